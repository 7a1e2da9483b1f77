-- Re-enqueues the jobs of an instance's job record as Sidekiq's own requeue does (BasicFetch#bulk_requeue):
-- RPUSH of the job string to the end of its queue that BRPOP fetches from, so it runs next. One script,
-- so Redis applies all of it or none of it whatever happens to the caller, and a second run finds the
-- record empty. Queue keys are built here, not passed in KEYS: drain-init supports standalone Redis only.
--
-- KEYS[1] the job record: hash jid -> JSON {queue, payload, process} (process 'host:pid', recorded at the
--         fetch) or {queue, payload, identity} (a Sidekiq identity, mirrored from its heartbeat)
-- KEYS[2] the recovery lock, which the caller must hold
-- KEYS[3] the instance's heartbeat record
-- KEYS[4] the index of job records (a hash: instance id -> owner token)
-- KEYS[5] the deaths of jobs: hash jid -> 'count:first death ms', the workers that died running each job
-- ARGV[1] the lock token
-- ARGV[2] the instance id
-- ARGV[3] '1' to recover only when the heartbeat record has expired
-- ARGV[4] the prefix of Sidekiq's keys: 'namespace:' under redis-namespace, else ''
-- ARGV[5] 'host:pid' to recover only the jobs of that process, '' for every job
-- ARGV[6] the deaths within the window that make a job poison ('0': never)
-- ARGV[7] the window, ms
-- ARGV[8..] pairs jid, identity: the jobs running in live Sidekiq processes
--
-- Each job to requeue counts one more death. Returns {'not-held'}, {'alive'}, or {'recovered', jid,
-- outcome, detail, deaths, ...} where outcome is requeued, running, queued or malformed (each removed from
-- the record), failed (kept for a later run), or poison (kept: its deaths reached ARGV[6]; the caller moves
-- it to Sidekiq's Dead set with bury.lua). detail is the queue, or what is wrong; deaths a count or ''.

if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'not-held'} end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return {'alive'} end

local prefix = ARGV[4]
local only = ARGV[5]
local poison_at, window = tonumber(ARGV[6]), tonumber(ARGV[7])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local running = {}
for i = 8, #ARGV - 1, 2 do
  running[ARGV[i]] = running[ARGV[i]] or {}
  running[ARGV[i]][ARGV[i + 1]] = true
end

-- 'host:pid' of a Sidekiq identity 'host:pid:nonce'.
local function process_of(identity)
  return string.match(identity, '^(.*:%d+):[^:]+$')
end

-- The process that ran the job: recorded at the fetch, or that of the mirrored identity.
local function owner(entry)
  if type(entry.process) == 'string' then return entry.process end
  if type(entry.identity) == 'string' then return process_of(entry.identity) end
  return nil
end

-- The process that ran the job is dead, but its work hash lives on for up to 60 s: only another counts.
local function runs_elsewhere(jid, process)
  for other in pairs(running[jid] or {}) do
    if process_of(other) ~= process then return true end
  end
  return false
end

local function json_object(text)
  local ok, value = pcall(cjson.decode, text)
  if ok and type(value) == 'table' then return value end
  return nil
end

local function defect(jid, entry)
  if entry == nil then return 'not a JSON object' end
  if owner(entry) == nil then return 'no process' end
  if type(entry.queue) ~= 'string' or entry.queue == '' then return 'no queue' end
  if type(entry.payload) ~= 'string' then return 'no payload string' end
  local job = json_object(entry.payload)
  if job == nil then return 'payload is not a JSON object' end
  if job.jid ~= jid then return 'payload has another jid' end
  return nil
end

-- redis.pcall: an error reply from one queue (WRONGTYPE) fails that job alone, never the script halfway.
local function errored(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

-- This death of a worker running the job, and the ones before within the window.
local function deaths_with_this(jid)
  local count, first = string.match(redis.call('HGET', KEYS[5], jid) or '', '^(%d+):(%d+)$')
  if count == nil or now - tonumber(first) > window then return 1, now end
  return tonumber(count) + 1, tonumber(first)
end

local function requeue(jid, entry)
  if runs_elsewhere(jid, owner(entry)) then return 'running', entry.queue, '' end
  local queue = prefix .. 'queue:' .. entry.queue
  local position = redis.pcall('LPOS', queue, entry.payload, 'RANK', -1)
  if errored(position) then return 'failed', position.err, '' end
  if position then return 'queued', entry.queue, '' end
  local deaths, first = deaths_with_this(jid)
  -- The count is kept where Redis takes it; a Redis out of memory loses a count, never a job.
  local function count() redis.pcall('HSET', KEYS[5], jid, deaths .. ':' .. first) end
  if poison_at > 0 and deaths >= poison_at then
    count()
    return 'poison', entry.queue, tostring(deaths)
  end
  local pushed = redis.pcall('RPUSH', queue, entry.payload)
  if errored(pushed) then return 'failed', pushed.err, '' end
  count()
  -- As a client's push does; Sidekiq's API and Web UI list queues from this set. The job is already safe.
  redis.pcall('SADD', prefix .. 'queues', entry.queue)
  return 'requeued', entry.queue, tostring(deaths)
end

local results = {'recovered'}
local record = redis.call('HGETALL', KEYS[1])
for i = 1, #record, 2 do
  local jid = record[i]
  local entry = json_object(record[i + 1])
  local problem = defect(jid, entry)
  if only == '' or problem or owner(entry) == only then
    local outcome, detail, deaths
    if problem then
      outcome, detail, deaths = 'malformed', problem, ''
    else
      outcome, detail, deaths = requeue(jid, entry)
    end
    if outcome ~= 'failed' and outcome ~= 'poison' then redis.call('HDEL', KEYS[1], jid) end
    results[#results + 1] = jid
    results[#results + 1] = outcome
    results[#results + 1] = detail
    results[#results + 1] = deaths
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HDEL', KEYS[4], ARGV[2]) end
return results
