-- Sidekiq's fetch (BRPOP of its queues) made reliable, for one or several fetches at once: each takes the
-- next job of the first non-empty queue in the order its worker gave, as BRPOP does, and records it in this
-- instance's job record in the same atomic step, so no job is ever out of its queue without being in the
-- record. It never blocks: the caller waits for a queue to change and runs it again for the fetches that
-- found nothing. Fetches are served in the order given, as Redis serves the BRPOPs blocked on a list.
--
-- KEYS[1]     the job record of this instance: hash jid -> JSON {queue, payload, process, fetchedAt, fetch}
-- KEYS[2]     the index of job records: hash instance id -> owner token
-- KEYS[3]     the instance record, whose owner must be this drain-init (or none)
-- KEYS[4..]   the queue lists of each fetch in turn, in its worker's order
-- ARGV[1]     the prefix of Sidekiq's queue keys: '<namespace>:queue:' or 'queue:'
-- ARGV[2]     the instance id
-- ARGV[3]     this drain-init's owner token
-- ARGV[4..]   three per fetch: the process that fetches ('host:pid'), the fetch's id (so that a fetch that
--             never reached the worker can be put back: unfetch.lua), and how many of KEYS are its queues
--
-- Returns one item per fetch: {queue key, job string, jid} for a job taken, false when each of its queues
-- was empty. Nothing is taken when {'broken', key, type} (a key of drain-init's has another type) or
-- {'not-owner', key, owner} (another drain-init owns the record) is returned instead.

local record, index, instance = KEYS[1], KEYS[2], KEYS[3]
for _, key in ipairs({record, index, instance}) do
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'none' and kind ~= 'hash' then return {'broken', key, kind} end
end
local owner = redis.call('HGET', instance, 'owner')
if owner and owner ~= ARGV[3] then return {'not-owner', instance, owner} end

local prefix = ARGV[1]
local now, anyTaken
local taken = {}
local nextKey = 4
for f = 4, #ARGV, 3 do
  local process, fetch, count = ARGV[f], ARGV[f + 1], tonumber(ARGV[f + 2])
  local item = false
  for i = nextKey, nextKey + count - 1 do
    local job = redis.call('RPOP', KEYS[i])
    if job then
      -- The jid, without decoding a payload that may be megabytes: Sidekiq writes it as a plain string.
      local jid = string.match(job, '"jid":"([^"\\]+)"') or ('sha1:' .. redis.sha1hex(job))
      if not now then
        local time = redis.call('TIME')
        now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
      end
      local entry = {
        queue = string.sub(KEYS[i], #prefix + 1),
        payload = job,
        process = process,
        fetchedAt = now,
        fetch = fetch,
      }
      redis.call('HSET', record, jid, cjson.encode(entry))
      item, anyTaken = {KEYS[i], job, jid}, true
      break
    end
  end
  taken[#taken + 1] = item
  nextKey = nextKey + count
end
if anyTaken then redis.call('HSET', index, ARGV[2], ARGV[3]) end
return taken
