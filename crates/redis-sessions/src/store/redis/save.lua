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
-- This is the careful path, used when the session may have expired by itself or the lock must be
-- checked (see mod.rs for the plain-command path). A destroyed or rotated session is a string
-- tombstone, an expired one does not exist: either way the key is not a hash, and a save must
-- never bring it back. HSET runs before HDEL so that the hash never becomes empty in between (an
-- emptied hash would vanish with its TTL). Arguments go to HSET and HDEL in chunks, because
-- Lua's unpack() fails beyond a few thousand values.
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return -1
  end
  redis.call('DEL', KEYS[2])
end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local n = tonumber(ARGV[3])
local chunk = 1000
local first = 4 + n
while first < #ARGV do
  local last = math.min(first + 2 * chunk - 1, #ARGV)
  redis.call('HSET', KEYS[1], unpack(ARGV, first, last))
  first = last + 1
end
first = 4
while first <= 3 + n do
  local last = math.min(first + chunk - 1, 3 + n)
  redis.call('HDEL', KEYS[1], unpack(ARGV, first, last))
  first = last + 1
end
return 1
