-- unlock.lua: release a session lock only if the caller still owns it.
--
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token
--
-- Returns 1 when released, 0 when the lock was not held by that token (expired or taken over).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
