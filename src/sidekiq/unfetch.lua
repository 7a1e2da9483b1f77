-- Puts a fetched job back at the fetch end of its queue, when its fetch never reached the worker (the
-- worker's connection closed before the reply left, or while the fetch script ran), and takes it out of the
-- job record. Found by the fetch's own id, so a job the worker did receive is never touched.
--
-- KEYS[1] the job record: hash jid -> JSON {queue, payload, process, fetchedAt, fetch}
-- ARGV[1] the fetch's id
-- ARGV[2] the prefix of Sidekiq's queue keys: '<namespace>:queue:' or 'queue:'
--
-- Returns the jid put back, or false when no entry has that fetch id (the script never ran, or it was
-- put back already).

local record = redis.call('HGETALL', KEYS[1])
for i = 1, #record, 2 do
  local ok, entry = pcall(cjson.decode, record[i + 1])
  if ok and type(entry) == 'table' and entry.fetch == ARGV[1] and type(entry.payload) == 'string' then
    redis.call('RPUSH', ARGV[2] .. entry.queue, entry.payload)
    redis.call('HDEL', KEYS[1], record[i])
    return record[i]
  end
end
return false
