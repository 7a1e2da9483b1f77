-- Takes an instance out of the index of job records at its clean end, when its record holds no job: the
-- index then lists only records that may hold jobs. A record that still holds one stays listed for the
-- peers to recover, and an index entry of another owner (a later drain-init with this id) is left alone.
--
-- KEYS[1] the instance's job record (hash)
-- KEYS[2] the index of job records (hash: instance id -> owner token)
-- ARGV[1] the instance id
-- ARGV[2] the owner token of this drain-init
--
-- Returns 1 when the entry was taken out, else 0.

if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[2], ARGV[1])
