-- create.lua (resonance layout): store a new session's blob, unless its id was ended first.
--
-- KEYS[1]  the session key
-- KEYS[2]  its tombstone key ({...}:t; the two share the hash tag)
-- ARGV[1]  the blob
-- ARGV[2]  TTL in milliseconds
--
-- Returns 1 when stored, 0 when a tombstone says the id was ended before its record was written
-- (a revoke that listed the users' index entry a login writes first): nothing is written, so
-- the revoked session does not come to life outside the index.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
