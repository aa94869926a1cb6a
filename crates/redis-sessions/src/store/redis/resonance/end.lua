-- resonance/end.lua: end a whole-session blob (a destroy, or the old id of a rotation)
-- atomically, returning the blob as it stood, and leave a tombstone beside it.
--
-- KEYS[1]  the session key (`<prefix>.session<id>`)
-- KEYS[2]  the session's lock key
-- KEYS[3]  the tombstone key
-- ARGV[1]  tombstone TTL in milliseconds
-- ARGV[2]  this request's lock token, or ""
-- ARGV[3]  "1": end only while ARGV[2] holds the lock (a locked rotation); "0": end regardless
-- ARGV[4]  the tombstone's value: the successor's id for a rotation, "" for a destroy
--
-- Returns {1, blob} when a live session was ended, {0} when there was none, {2} when a rotation
-- to the same successor already ended it (a retry), {-1} when ARGV[3] is "1" and the lock is
-- not ARGV[2]'s (nothing changed). The framework's key layout has no room for a tombstone in
-- the session key itself (PHP reads it with GET), so the tombstone is a key of its own.
local current = redis.call('GET', KEYS[1])
if not current and ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then
  return {2}
end
local owned = ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2]
if ARGV[3] == '1' and not owned then
  return {-1}
end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[1])
if owned then
  redis.call('DEL', KEYS[2])
end
if not current then
  return {0}
end
redis.call('DEL', KEYS[1])
return {1, current}
