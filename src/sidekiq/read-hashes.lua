-- Reads Sidekiq's hashes of a few processes with caps, so that a huge or hostile hash costs drain-init
-- neither memory nor time: at most ARGV[2] fields of each hash, and no value longer than ARGV[1] bytes
-- (HSTRLEN first: a longer one is only measured). A key of another type is named, not read.
--
-- KEYS[1..] the hashes to read
-- ARGV[1] the longest value read, bytes
-- ARGV[2] the most fields read of one hash
--
-- Returns, for each key in order, {type, fields in the hash, {field, value, ...}, {field, length, ...}}:
-- type is 'hash', 'none' (no such key: the two lists are empty) or the key's other type (not read); the
-- first list holds the fields read, the second the fields left out for their length.

local maxBytes, maxFields = tonumber(ARGV[1]), tonumber(ARGV[2])

local function fieldsOf(key, total)
  if total <= maxFields then return redis.call('HKEYS', key) end
  local fields, cursor = {}, '0'
  repeat
    local page = redis.call('HSCAN', key, cursor, 'COUNT', maxFields)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      if #fields < maxFields then fields[#fields + 1] = page[2][i] end
    end
  until cursor == '0' or #fields >= maxFields
  return fields
end

local replies = {}
for index, key in ipairs(KEYS) do
  local read, long, total, kind = {}, {}, redis.pcall('HLEN', key), 'hash'
  -- TYPE is asked only of a key that is no hash: a healthy fleet's reads never run it.
  if type(total) ~= 'number' then
    kind, total = redis.call('TYPE', key).ok, 0
  elseif total == 0 then
    kind = 'none'
  else
    for _, field in ipairs(fieldsOf(key, total)) do
      local length = redis.call('HSTRLEN', key, field)
      if length > maxBytes then
        long[#long + 1] = field
        long[#long + 1] = length
      else
        read[#read + 1] = field
        read[#read + 1] = redis.call('HGET', key, field)
      end
    end
  end
  replies[index] = {kind, total, read, long}
end
return replies
