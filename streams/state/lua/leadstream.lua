#!lua name=leadstream_v1
-- leadstream's Redis Functions, loaded once per worker start with FUNCTION LOAD REPLACE.
-- Functions survive restarts (with persistence) and fail over with replicas, unlike EVALSHA's cache.

-- Compare-and-set one contact: write the state and new outbox entries only if the stored version
-- is still the one the worker loaded. Atomic, so a crash leaves either all of it or none.
--   KEYS[1]  the contact's hash (fields: v = version, s = state, o:<handoff id> = outbox entry)
--   ARGV[1]  expected version ("0" for a new contact)
--   ARGV[2]  encoded state
--   ARGV[3]  TTL in seconds (inactive contacts expire)
--   ARGV[4..] pairs of handoff id, handoff record value
-- Returns {1, new version} on success, {0, current version} on conflict.
local function commit_contact(keys, args)
  local key = keys[1]
  local current = redis.call('HGET', key, 'v') or '0'
  if current ~= args[1] then
    return {0, tonumber(current)}
  end
  local version = tonumber(current) + 1
  redis.call('HSET', key, 'v', version, 's', args[2])
  for i = 4, #args, 2 do
    redis.call('HSET', key, 'o:' .. args[i], args[i + 1])
  end
  redis.call('EXPIRE', key, tonumber(args[3]))
  return {1, version}
end

redis.register_function('ls_commit_contact_v1', commit_contact)
