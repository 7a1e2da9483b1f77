-- Moves a poison job from the job record to Sidekiq's Dead set, as Sidekiq's DeadSet#kill writes it: ZADD
-- at the time of death, then the set trimmed to dead_timeout_in_seconds and dead_max_jobs. Does nothing
-- when the job has left the record meanwhile (another recovery buried it).
--
-- KEYS[1] the job record (hash jid -> entry)
-- KEYS[2] the deaths of jobs (hash jid -> 'count:first death ms')
-- KEYS[3] Sidekiq's Dead set (sorted set, score: epoch seconds)
-- ARGV[1] the jid
-- ARGV[2] the Dead set entry: the job's JSON with error_class, error_message, failed_at
-- ARGV[3] dead_max_jobs
-- ARGV[4] dead_timeout_in_seconds
--
-- Returns 1 when buried, 0 when the job was no longer in the record.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[4]))
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[3]))
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
