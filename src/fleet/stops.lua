-- The fleet's platform stops: each drain-init marks its stop when it begins and unmarks it when it
-- ends; a stop that ran out of time (drain-init's own kill step came) or whose mark outlived its deadline
-- (the platform killed drain-init first) is counted. Times are Redis's own (TIME), so hosts with skewed
-- clocks agree.
--
-- KEYS[1] <prefix>:stops      hash: instance id -> its platform deadline, ms since the epoch
-- KEYS[2] <prefix>:stops-cut  counter of the stops that ran out of time
-- ARGV[1] 'begin', ARGV[2] instance id, ARGV[3] grace period ms: marks the stop; returns 0
-- ARGV[1] 'end', ARGV[2] instance id, ARGV[3] '1' when the stop ran out of time: unmarks it, counting it
--         then (only if it was marked, so it is never counted twice); returns the count
-- ARGV[1] 'count', ARGV[2] slack ms: counts and unmarks the stops whose deadline passed more than the
--         slack ago (their drain-init never said how they ended); returns the count

local stops, cut = KEYS[1], KEYS[2]
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

if ARGV[1] == 'begin' then
  redis.call('HSET', stops, ARGV[2], tostring(nowMs + tonumber(ARGV[3])))
  return 0
end

if ARGV[1] == 'end' then
  if redis.call('HDEL', stops, ARGV[2]) == 1 and ARGV[3] == '1' then redis.call('INCR', cut) end
  return tonumber(redis.call('GET', cut) or '0')
end

local entries = redis.call('HGETALL', stops)
for i = 1, #entries, 2 do
  local deadline = tonumber(entries[i + 1])
  if deadline == nil or deadline + tonumber(ARGV[2]) < nowMs then
    redis.call('HDEL', stops, entries[i])
    redis.call('INCR', cut)
  end
end
return tonumber(redis.call('GET', cut) or '0')
