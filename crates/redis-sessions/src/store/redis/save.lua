-- save.lua: apply a session change set, never recreating a session that is gone.
--
-- KEYS[1]  the session hash
-- KEYS[2]  the session's lock key (read only when ARGV[2] is not empty)
-- ARGV[1]  new TTL in milliseconds
-- ARGV[2]  lock token to check and release, or "" for an unlocked save
-- ARGV[3]  n, the number of fields to delete
-- ARGV[4 .. 3+n]   fields to delete
-- ARGV[4+n ..]     field, value pairs to write (always includes the metadata field "")
--
-- Returns 1 when saved, 0 when the session is gone (nothing written), -1 when the lock given is
-- not held by that token (nothing written).
--
-- PEXPIRE comes first: its 0 reply means the key does not exist, and a save must never bring a
-- destroyed, rotated or expired session back. HSET runs before HDEL so that the hash never
-- becomes empty in between (an emptied hash would vanish with its TTL).
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
  end
  redis.call('DEL', KEYS[2])
end
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local n = tonumber(ARGV[3])
if #ARGV >= 5 + n then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4 + n))
end
if n > 0 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 4, 3 + n))
end
return 1
