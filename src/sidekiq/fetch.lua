-- Sidekiq's fetch (BRPOP of its queues) made reliable: takes the next job of the first non-empty queue in
-- the order the worker gave, as BRPOP does, and records it in this instance's job record in the same atomic
-- step, so no job is ever out of its queue without being in the record. It never blocks: the caller waits
-- for a queue to change and runs it again.
--
-- KEYS[1..n]  the queue lists, in the worker's order
-- KEYS[n+1]   the job record of this instance: hash jid -> JSON {queue, payload, process, fetchedAt, fetch}
-- KEYS[n+2]   the index of job records: hash instance id -> owner token, written only when it does not
--             name this drain-init already (a write at each fetch would go to every replica and the AOF)
-- KEYS[n+3]   the instance record, whose owner must be this drain-init (or none)
-- ARGV[1]     the prefix of Sidekiq's queue keys: '<namespace>:queue:' or 'queue:'
-- ARGV[2]     the process that fetches, 'host:pid'
-- ARGV[3]     the instance id
-- ARGV[4]     this drain-init's owner token
-- ARGV[5]     this fetch's id, so that a fetch that never reached the worker can be put back (unfetch.lua)
--
-- Returns {queue key, job string, jid} for a job taken; false when every queue is empty. Nothing is taken
-- when {'broken', key, type} (a key of drain-init's has another type) or {'not-owner', key, owner} (another
-- drain-init owns the record) is returned, nor when it answers an error (Redis refused a write).

local record, index, instance = KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]

-- A key of another type is found by the command that meets it (redis.pcall), not looked for before each
-- fetch; whatever refused a write, the job already taken goes back where it was, so nothing is taken.
-- Returns the script's reply for a command's error: the broken key, or the error itself.
local function failure(reply, key)
  if type(reply) ~= 'table' or reply.err == nil then return nil end
  if string.find(reply.err, 'WRONGTYPE', 1, true) then return {'broken', key, redis.call('TYPE', key).ok} end
  return redis.error_reply(reply.err)
end

local owner = redis.pcall('HGET', instance, 'owner')
local refused = failure(owner, instance)
if refused then return refused end
if owner and owner ~= ARGV[4] then return {'not-owner', instance, owner} end

for i = 1, #KEYS - 3 do
  local job = redis.call('RPOP', KEYS[i])
  if job then
    -- The jid, without decoding a payload that may be megabytes: Sidekiq writes it as a plain string.
    local jid = string.match(job, '"jid":"([^"\\]+)"') or ('sha1:' .. redis.sha1hex(job))
    local time = redis.call('TIME')
    local entry = {
      queue = string.sub(KEYS[i], #ARGV[1] + 1),
      payload = job,
      process = ARGV[2],
      fetchedAt = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000),
      fetch = ARGV[5],
    }
    refused = failure(redis.pcall('HSET', record, jid, cjson.encode(entry)), record)
    if refused then
      redis.call('RPUSH', KEYS[i], job)
      return refused
    end
    local listed = redis.pcall('HGET', index, ARGV[3])
    refused = failure(listed, index)
    if not refused and listed ~= ARGV[4] then
      refused = failure(redis.pcall('HSET', index, ARGV[3], ARGV[4]), index)
    end
    if refused then
      redis.call('HDEL', record, jid)
      redis.call('RPUSH', KEYS[i], job)
      return refused
    end
    return {KEYS[i], job, jid}
  end
end
return false
