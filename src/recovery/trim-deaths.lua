-- Forgets the deaths of jobs whose first counted death is older than the window: a job that went back to
-- its queue and was run by a worker outside drain-init never has its count taken away by an ack. One
-- HSCAN step per call, so a large hash is walked a little at a time.
--
-- KEYS[1] the deaths of jobs: hash jid -> 'count:first death ms'
-- ARGV[1] the HSCAN cursor ('0' to start)
-- ARGV[2] the window, ms
-- ARGV[3] the HSCAN COUNT hint
--
-- Returns {next cursor, fields removed}.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local step = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[3])
local removed = 0
local fields = step[2]
for i = 1, #fields, 2 do
  local first = tonumber(string.match(fields[i + 1], '^%d+:(%d+)$') or '')
  if first == nil or now - first > tonumber(ARGV[2]) then
    removed = removed + redis.call('HDEL', KEYS[1], fields[i])
  end
end
return {step[1], removed}
