-- Sidekiq's fleet-wide figures as Sidekiq::Stats and Sidekiq::Queue read them, in one round trip and
-- read-only. Its cost is bounded: the members of `processes` and `queues` are listed, and at most
-- ARGV[2] queues and ARGV[3] processes are read with O(1) commands. The oldest job of each queue is
-- decoded here, so only its enqueue time leaves Redis, never its arguments. Keys are built here, not
-- passed in KEYS: drain-init supports standalone Redis only.
--
-- ARGV[1] the prefix of Sidekiq's keys: 'namespace:' under redis-namespace, else ''
-- ARGV[2] the most queues read (by name)
-- ARGV[3] the most processes whose busy count is read
--
-- Returns processed, failed, scheduled, retry, dead, processes, busy and the number of queues, then
-- for each queue read its name, its size and the enqueue time of its oldest job: '' when it has none
-- (an empty queue, or a job without enqueued_at or created_at), '?' when that job is not a JSON object.

local prefix = ARGV[1]
local maxQueues, maxProcesses = tonumber(ARGV[2]), tonumber(ARGV[3])

local processes = redis.call('SMEMBERS', prefix .. 'processes')
local busy = 0
for i = 1, math.min(#processes, maxProcesses) do
  busy = busy + (tonumber(redis.call('HGET', prefix .. processes[i], 'busy')) or 0)
end

local queues = redis.call('SMEMBERS', prefix .. 'queues')
table.sort(queues)

local reply = {
  redis.call('GET', prefix .. 'stat:processed') or '0',
  redis.call('GET', prefix .. 'stat:failed') or '0',
  tostring(redis.call('ZCARD', prefix .. 'schedule')),
  tostring(redis.call('ZCARD', prefix .. 'retry')),
  tostring(redis.call('ZCARD', prefix .. 'dead')),
  tostring(#processes),
  tostring(busy),
  tostring(#queues),
}

-- Sidekiq 8.1.2 falls back to created_at as well; ms or seconds are told apart by the caller.
local function enqueueTime(job)
  if type(job.enqueued_at) == 'number' then return tostring(job.enqueued_at) end
  if type(job.created_at) == 'number' then return tostring(job.created_at) end
  return ''
end

for i = 1, math.min(#queues, maxQueues) do
  local key = prefix .. 'queue:' .. queues[i]
  local oldest = redis.call('LINDEX', key, -1)
  local enqueuedAt = ''
  if oldest then
    local decoded, job = pcall(cjson.decode, oldest)
    enqueuedAt = (decoded and type(job) == 'table') and enqueueTime(job) or '?'
  end
  reply[#reply + 1] = queues[i]
  reply[#reply + 1] = tostring(redis.call('LLEN', key))
  reply[#reply + 1] = enqueuedAt
end

return reply
