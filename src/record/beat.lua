-- One beat of the instance record: every field written, the TTL and the registry refreshed, in one step,
-- only while this drain-init owns the record. A note another drain-init left (it started with the same
-- instance id and took another) is handed over once.
--
-- KEYS[1] the instance record (hash)
-- KEYS[2] the registry of instances (sorted set: id -> last beat)
-- ARGV[1] the owner's token
-- ARGV[2] the TTL, ms
-- ARGV[3] the instance id
-- ARGV[4] this beat's time, Redis ms: the registry's score
-- ARGV[5..] field, value pairs
--
-- Returns {'ok', note or '', seconds, microseconds} (Redis's TIME), or {'taken', owner}.

local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return {'taken', owner} end
local note = redis.call('HGET', KEYS[1], 'collision')
if note then redis.call('HDEL', KEYS[1], 'collision') end
local lastBeat = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], lastBeat, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (lastBeat - tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local time = redis.call('TIME')
return {'ok', note or '', time[1], time[2]}
