-- Puts one job held in a job record (requeue.lua holds the jobs one worker death short of the Dead set) back
-- at the end of its queue that BRPOP fetches from, and takes it out of the record: the fetch records it again.
-- Does nothing when the job is no longer held there (a recovery of the record took it).
--
-- KEYS[1] the job record (hash jid -> entry)
-- ARGV[1] the jid
-- ARGV[2] the prefix of Sidekiq's keys: 'namespace:' under redis-namespace, else ''
--
-- Returns the queue, or false. A queue key of another type is an error and changes nothing.

local text = redis.call('HGET', KEYS[1], ARGV[1])
if not text then return false end
local ok, entry = pcall(cjson.decode, text)
if not ok or type(entry) ~= 'table' or entry.held ~= true then return false end
redis.call('RPUSH', ARGV[2] .. 'queue:' .. entry.queue, entry.payload)
redis.call('SADD', ARGV[2] .. 'queues', entry.queue)
redis.call('HDEL', KEYS[1], ARGV[1])
return entry.queue
