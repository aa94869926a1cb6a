-- end.lua: end a session record (a destroy, or the old id of a rotation) atomically.
--
-- KEYS[1]  the session hash
-- KEYS[2]  the session's lock key
-- KEYS[3]  a rotation's copy of its reply, kept beside the tombstone (same hash tag)
-- ARGV[1]  tombstone TTL in milliseconds
-- ARGV[2]  this request's lock token, or ""
-- ARGV[3]  "1": end only while ARGV[2] holds the lock (a locked rotation); "0": end regardless
-- ARGV[4]  the tombstone's value: the successor's storage id for a rotation, "" for a destroy
--
-- Returns {1, field, value, ...} when a live hash was ended (its fields as HGETALL gives them,
-- read in the same atomic step, so a rotation can carry every landed write over), {0} when there
-- was no live record, and {-1} when ARGV[3] is "1" and the lock is not ARGV[2]'s (nothing
-- changed).
--
-- A rotation to the same successor that already ended the record (a retry: the first reply was
-- lost) changes nothing and gets the first answer again, from the copy in KEYS[3] (or {0} if
-- the first end found no live record). Without it the retry could not carry over what the
-- first end read, and a write another request was answered 200 for would be lost. The copy is
-- a MessagePack string (cmsgpack, built into Redis's Lua), not a hash: tools and tests that
-- count session hashes do not see it, sessionctl's purge removes it with its session, and no
-- ACL right is needed beyond those the library has. It costs a rotation one more `SET`, and
-- Redis the record's size for the tombstone time; destroys keep no copy.
--
-- The record becomes a string tombstone: a later HSET fails with WRONGTYPE and a later HGETALL
-- tells "ended" from "never existed". Only a lock held by ARGV[2] is deleted; anybody else's
-- lock expires by itself.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'string' and ARGV[4] ~= '' and redis.call('GET', KEYS[1]) == ARGV[4] then
  local kept = redis.call('GET', KEYS[3])
  if not kept then
    return {0}
  end
  return cmsgpack.unpack(kept)
end
local owned = ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2]
if ARGV[3] == '1' and not owned then
  return {-1}
end
local reply = {0}
if kind == 'hash' then
  reply = redis.call('HGETALL', KEYS[1])
  table.insert(reply, 1, 1)
  if ARGV[4] ~= '' then
    redis.call('SET', KEYS[3], cmsgpack.pack(reply), 'PX', ARGV[1])
  end
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[1])
if owned then
  redis.call('DEL', KEYS[2])
end
return reply
