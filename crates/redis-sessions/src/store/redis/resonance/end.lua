-- resonance/end.lua: end a whole-session blob (a destroy, or the old id of a rotation)
-- atomically, returning the blob as it stood, and leave a tombstone beside it.
--
-- KEYS[1]  the session key (`<prefix>.session<id>`)
-- KEYS[2]  the session's lock key
-- KEYS[3]  the tombstone key
-- KEYS[4]  a rotation's copy of the blob it ended, kept as long as the tombstone
-- ARGV[1]  tombstone TTL in milliseconds
-- ARGV[2]  this request's lock token, or ""
-- ARGV[3]  "1": end only while ARGV[2] holds the lock (a locked rotation); "0": end regardless
-- ARGV[4]  the tombstone's value: the successor's id for a rotation, "" for a destroy
--
-- Returns {1, blob} when a live session was ended, {0} when there was none, {-1} when ARGV[3] is
-- "1" and the lock is not ARGV[2]'s (nothing changed). A rotation to the same successor that
-- already ended it (a retry: the first reply was lost) changes nothing and gets the first
-- answer again: {1, blob} from the copy in KEYS[4], or {0}; so the retry carries over what the
-- first end read (see `end.lua` of the native layout). The framework's key layout has no room for a tombstone in
-- the session key itself (PHP reads it with GET), so the tombstone is a key of its own.
local current = redis.call('GET', KEYS[1])
if not current and ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then
  local kept = redis.call('GET', KEYS[4])
  if not kept then
    return {0}
  end
  return {1, kept}
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
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[4], current, 'PX', ARGV[1])
end
return {1, current}
