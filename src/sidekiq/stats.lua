-- Sidekiq's fleet-wide figures as the standalone exporter reads them through Sidekiq::Stats,
-- Sidekiq::Queue, Sidekiq::ProcessSet and Sidekiq::Workers, in one round trip. Its cost is bounded: the
-- members of `processes` and `queues` are listed, at most ARGV[2] queues are read with O(1) commands
-- (the enqueued total takes LLEN of every queue, as Stats#enqueued does), and at most ARGV[3] processes
-- are read: their hash with HMGET and their work hash with HVALS. Only queue names and times leave
-- Redis, never a job's arguments. The figures are the whole fleet's, so the first drain-init to gather
-- them in a period keeps the reply in KEYS[1] for ARGV[4] ms and every other one gets it from there: the
-- fleet pays for one gather per period, however many pods it has. Sidekiq's keys are built here, not
-- passed in KEYS: drain-init supports standalone Redis (or the primary Sentinel names) only.
--
-- KEYS[1] where the reply is kept for the fleet: drain-init's prefix, :sidekiq-stats, and the namespace
-- ARGV[1] the prefix of Sidekiq's keys: 'namespace:' under redis-namespace, else ''
-- ARGV[2] the most queues read (by name)
-- ARGV[3] the most processes read (by identity)
-- ARGV[4] how long the reply is kept, ms
-- ARGV[5] the longest kept reply taken, bytes: a longer value, or a key of another type, is not drain-init's
--         reply; it is measured, never read, and the new reply replaces it
--
-- Returns one JSON object:
--   processed, failed     the counters as Redis holds them (strings)
--   scheduled, retry, dead, processes, queueCount, enqueued, busy, workers, unreadable   numbers
--   queues   [name, size, enqueue time of its oldest job] for each queue read; the time is '' when it
--            has none (an empty queue, or a job without enqueued_at or created_at), '?' when that job
--            is not a JSON object
--   hosts    [hostname, quiet processes, other processes, rss KB (-1: none reported)]
--   serving  [queue, processes, their concurrency, their busy] over the queues each process serves
--   running  [queue, jobs running, run_at of the oldest] from the work hashes
-- A process whose hash has expired (a ghost) counts in `processes` and nowhere else, as in Sidekiq's
-- own API; one whose `info` is not a JSON object counts in `unreadable`.

local keptLength = redis.pcall('STRLEN', KEYS[1])
if type(keptLength) == 'number' and keptLength > 0 and keptLength <= tonumber(ARGV[5]) then
  return redis.call('GET', KEYS[1])
end

local prefix = ARGV[1]
local maxQueues, maxProcesses = tonumber(ARGV[2]), tonumber(ARGV[3])

local function number(value)
  return tonumber(value) or 0
end

-- Sidekiq 8.1.2 moved concurrency out of `info` into the hash; 8.0.9 lists capsules in `info`.
local function concurrencyOf(info, field)
  if tonumber(field) then return tonumber(field) end
  if type(info.concurrency) == 'number' then return info.concurrency end
  local total = 0
  if type(info.capsules) == 'table' then
    for _, capsule in pairs(info.capsules) do
      if type(capsule) == 'table' then total = total + number(capsule.concurrency) end
    end
  end
  return total
end

-- Sidekiq writes each work entry as {"queue":...,"payload":...,"run_at":...} in that order: the queue
-- and run_at are read from its two ends without decoding the job in the middle (most of the cost, and
-- of the bytes); an entry of another shape is decoded whole.
local HEAD = '{"queue":"'
local function queueAndRunAt(work)
  if string.sub(work, 1, #HEAD) == HEAD then
    local close = string.find(work, '"', #HEAD + 1, true)
    local runAt = tonumber(string.match(string.sub(work, -40), '"run_at":(%d+%.?%d*)}$'))
    if close and runAt and string.sub(work, close - 1, close - 1) ~= '\\' and string.sub(work, close + 1, close + 1) == ',' then
      return string.sub(work, #HEAD + 1, close - 1), runAt
    end
  end
  local ok, job = pcall(cjson.decode, work)
  if ok and type(job) == 'table' and type(job.queue) == 'string' and type(job.run_at) == 'number' then
    return job.queue, job.run_at
  end
  return nil
end

local function entry(map, key, fresh)
  if map[key] == nil then map[key] = fresh() end
  return map[key]
end

local members = redis.call('SMEMBERS', prefix .. 'processes')
table.sort(members)
local busy, workers, unreadable = 0, 0, 0
local hosts, serving, running = {}, {}, {}

for i = 1, math.min(#members, maxProcesses) do
  local identity = prefix .. members[i]
  local fields = redis.call('HMGET', identity, 'info', 'busy', 'quiet', 'rss', 'concurrency')
  local processBusy = number(fields[2])
  busy = busy + processBusy
  if fields[1] then
    local decoded, info = pcall(cjson.decode, fields[1])
    if decoded and type(info) == 'table' then
      local concurrency = concurrencyOf(info, fields[5])
      workers = workers + concurrency
      local host = entry(hosts, type(info.hostname) == 'string' and info.hostname or '', function()
        return { quiet = 0, other = 0, rss = -1 }
      end)
      if fields[3] == 'true' then host.quiet = host.quiet + 1 else host.other = host.other + 1 end
      if tonumber(fields[4]) then host.rss = math.max(host.rss, 0) + tonumber(fields[4]) end
      local seen = {}
      for _, queue in ipairs(type(info.queues) == 'table' and info.queues or {}) do
        if type(queue) == 'string' and not seen[queue] then
          seen[queue] = true
          local figures = entry(serving, queue, function() return { processes = 0, workers = 0, busy = 0 } end)
          figures.processes = figures.processes + 1
          figures.workers = figures.workers + concurrency
          figures.busy = figures.busy + processBusy
        end
      end
      for _, suffix in ipairs({ ':work', ':workers' }) do
        for _, work in ipairs(redis.call('HVALS', identity .. suffix)) do
          local queue, runAt = queueAndRunAt(work)
          if queue then
            local figures = entry(running, queue, function() return { jobs = 0, oldest = runAt } end)
            figures.jobs = figures.jobs + 1
            figures.oldest = math.min(figures.oldest, runAt)
          end
        end
      end
    else
      unreadable = unreadable + 1
    end
  end
end

-- Sidekiq 8.1.2 falls back to created_at as well; ms or seconds are told apart by the caller.
local function enqueueTime(job)
  if type(job.enqueued_at) == 'number' then return tostring(job.enqueued_at) end
  if type(job.created_at) == 'number' then return tostring(job.created_at) end
  return ''
end

local queueNames = redis.call('SMEMBERS', prefix .. 'queues')
table.sort(queueNames)
local queues, enqueued = {}, 0
for i = 1, #queueNames do
  local key = prefix .. 'queue:' .. queueNames[i]
  local size = redis.call('LLEN', key)
  enqueued = enqueued + size
  if i <= maxQueues then
    local oldest = redis.call('LINDEX', key, -1)
    local enqueuedAt = ''
    if oldest then
      local decoded, job = pcall(cjson.decode, oldest)
      enqueuedAt = (decoded and type(job) == 'table') and enqueueTime(job) or '?'
    end
    queues[#queues + 1] = { queueNames[i], size, enqueuedAt }
  end
end

local function rows(map, row)
  local list = {}
  for key, figures in pairs(map) do list[#list + 1] = row(key, figures) end
  return list
end

local reply = cjson.encode({
  processed = redis.call('GET', prefix .. 'stat:processed') or '0',
  failed = redis.call('GET', prefix .. 'stat:failed') or '0',
  scheduled = redis.call('ZCARD', prefix .. 'schedule'),
  retry = redis.call('ZCARD', prefix .. 'retry'),
  dead = redis.call('ZCARD', prefix .. 'dead'),
  processes = #members,
  queueCount = #queueNames,
  enqueued = enqueued,
  busy = busy,
  workers = workers,
  unreadable = unreadable,
  queues = queues,
  hosts = rows(hosts, function(host, figures) return { host, figures.quiet, figures.other, figures.rss } end),
  serving = rows(serving, function(queue, figures)
    return { queue, figures.processes, figures.workers, figures.busy }
  end),
  running = rows(running, function(queue, figures) return { queue, figures.jobs, figures.oldest } end),
})
-- Kept where Redis takes writes; a read-only replica still gives the figures, each gather its own.
redis.pcall('SET', KEYS[1], reply, 'PX', ARGV[4])
return reply
