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
-- ARGV[8] '1' to hold the suspects (jobs one death short of poison) in the record, marked held, for the
--         caller to release one at a time (release.lua); '0' to requeue them and the held ones (the record's
--         owner is gone)
-- ARGV[9] the longest entry taken for a job, bytes: a longer one is malformed, never decoded nor requeued
-- ARGV[10..] pairs jid, identity: the jobs running in live Sidekiq processes
--
-- Each job to requeue counts one more death; a held job's death was counted when it was held. Returns
-- {'not-held'}, {'alive'}, or {'recovered', jid, outcome, detail, deaths, ...} where outcome is requeued,
-- running, queued or malformed (each removed from the record), failed (kept for a later run), held (kept,
-- marked), or poison (kept: its deaths reached ARGV[6]; the caller moves it to Sidekiq's Dead set with
-- bury.lua). detail is the queue, or what is wrong; deaths a count or ''.

if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'not-held'} end
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return {'alive'} end

local prefix = ARGV[4]
local only = ARGV[5]
local poison_at, window = tonumber(ARGV[6]), tonumber(ARGV[7])
local hold = ARGV[8] == '1'
local max_bytes = tonumber(ARGV[9])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local running = {}
for i = 10, #ARGV - 1, 2 do
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

-- Only what looks like a Sidekiq job of the queue it is recorded for goes back: a job object with its
-- class, this jid and that queue.
local function defect(jid, entry)
  if entry == nil then return 'not a JSON object' end
  if owner(entry) == nil then return 'no process' end
  if type(entry.queue) ~= 'string' or entry.queue == '' then return 'no queue' end
  if type(entry.payload) ~= 'string' then return 'no payload string' end
  local job = json_object(entry.payload)
  if job == nil then return 'payload is not a JSON object' end
  if job.jid ~= jid then return 'payload has another jid' end
  if type(job.class) ~= 'string' or job.class == '' then return 'payload has no class' end
  if job.queue ~= entry.queue then return 'payload is of another queue' end
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

-- RPUSH to the end BRPOP fetches from, as Sidekiq's own requeue does.
local function push(entry, deaths)
  local pushed = redis.pcall('RPUSH', prefix .. 'queue:' .. entry.queue, entry.payload)
  if errored(pushed) then return 'failed', pushed.err, '' end
  -- As a client's push does; Sidekiq's API and Web UI list queues from this set. The job is already safe.
  redis.pcall('SADD', prefix .. 'queues', entry.queue)
  return 'requeued', entry.queue, deaths
end

-- entry: the decoded record entry; text: as recorded, marked held byte for byte (no re-encoding by cjson).
local function requeue(jid, entry, text)
  if entry.held == true then
    local counted = string.match(redis.call('HGET', KEYS[5], jid) or '', '^(%d+):') or ''
    if hold then return 'held', entry.queue, counted end
    return push(entry, counted)
  end
  if runs_elsewhere(jid, owner(entry)) then return 'running', entry.queue, '' end
  local position = redis.pcall('LPOS', prefix .. 'queue:' .. entry.queue, entry.payload, 'RANK', -1)
  if errored(position) then return 'failed', position.err, '' end
  if position then return 'queued', entry.queue, '' end
  local deaths, first = deaths_with_this(jid)
  -- The count is kept where Redis takes it; a Redis out of memory loses a count, never a job.
  local function count() redis.pcall('HSET', KEYS[5], jid, deaths .. ':' .. first) end
  if poison_at > 0 and deaths >= poison_at then
    count()
    return 'poison', entry.queue, tostring(deaths)
  end
  if hold and deaths == poison_at - 1 then
    local marked = redis.pcall('HSET', KEYS[1], jid, '{"held":true,' .. string.sub(text, 2))
    if errored(marked) then return 'failed', marked.err, '' end
    count()
    return 'held', entry.queue, tostring(deaths)
  end
  local outcome, detail, counted = push(entry, tostring(deaths))
  if outcome == 'requeued' then count() end
  return outcome, detail, counted
end

local results = {'recovered'}
local record = redis.call('HGETALL', KEYS[1])
for i = 1, #record, 2 do
  local jid = record[i]
  local too_long = #record[i + 1] > max_bytes
  local entry = not too_long and json_object(record[i + 1]) or nil
  local problem = too_long and ('longer than ' .. max_bytes .. ' bytes') or defect(jid, entry)
  -- A held job's worker is long gone: it is taken only with the whole record.
  local held = not problem and entry.held == true
  if only == '' or problem or (owner(entry) == only and not held) then
    local outcome, detail, deaths
    if problem then
      outcome, detail, deaths = 'malformed', problem, ''
    else
      outcome, detail, deaths = requeue(jid, entry, record[i + 1])
    end
    if outcome ~= 'failed' and outcome ~= 'poison' and outcome ~= 'held' then redis.call('HDEL', KEYS[1], jid) end
    results[#results + 1] = jid
    results[#results + 1] = outcome
    results[#results + 1] = detail
    results[#results + 1] = deaths
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HDEL', KEYS[4], ARGV[2]) end
return results
