-- Deletes a lock only for the holder of its token: a holder whose lock expired and was taken by another
-- must not release the other's. KEYS[1] the lock, ARGV[1] the token. Returns 1 when released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
