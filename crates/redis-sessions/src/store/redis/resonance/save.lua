-- resonance/save.lua: replace a whole-session blob (`format = resonance`) only if it is still
-- the one the caller read, so no concurrent write is lost: the caller merged its changes into
-- that blob and tries again with whatever it finds instead.
--
-- KEYS[1]  the session key (`<prefix>.session<id>`, a string holding an igbinary blob)
-- KEYS[2]  the session's lock key
-- ARGV[1]  the blob the caller read
-- ARGV[2]  the blob to write
-- ARGV[3]  the TTL in milliseconds, or "" to keep the current TTL
-- ARGV[4]  this request's lock token (the save must hold the lock, and releases it), or ""
--
-- Returns {1} when written, {0} when the key is gone (never recreated: no resurrection), {-1}
-- when ARGV[4] does not hold the lock (nothing written), and {2, current} when the blob changed
-- since it was read (nothing written).
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return {-1}
end
local current = redis.call('GET', KEYS[1])
if not current then
  return {0}
end
if current ~= ARGV[1] then
  return {2, current}
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('DEL', KEYS[2])
end
return {1}
