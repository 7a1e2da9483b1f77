-- Claims an instance id for one drain-init: its record names the owner by a token of that drain-init's own
-- start, so two live drain-inits never share a record. A record held by another token is left alone unless
-- the caller found that owner dead and names it.
--
-- KEYS[1] the instance record (hash)
-- ARGV[1] the claimant's token
-- ARGV[2] the token of an owner found dead, '' for none: only that owner's record is taken over
-- ARGV[3] the record's TTL, ms
--
-- Returns {'claimed', previous owner or ''} or {'held', owner, lastBeat, pid, hostname, beatEveryMs}.

local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == false or owner == ARGV[1] or (ARGV[2] ~= '' and owner == ARGV[2]) then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed', owner or ''}
end
local fields = redis.call('HMGET', KEYS[1], 'lastBeat', 'pid', 'hostname', 'beatEveryMs')
return {'held', owner, fields[1] or '', fields[2] or '', fields[3] or '', fields[4] or ''}
