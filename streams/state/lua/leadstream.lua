#!lua name=leadstream_v2
-- leadstream's Redis Functions, loaded once per worker start with FUNCTION LOAD REPLACE.
-- Functions survive restarts (with persistence) and fail over with replicas, unlike EVALSHA's cache.
--
-- A record is one hash: v = version, s = state, a = alias, o:<entry> = outbox entries.

-- Raise Redis's permission error unless this user may run command on key. A function does not
-- roll back: a command refused after its first write would leave the data half written, so a
-- function that writes asks for every later write before its first.
local function require_allowed(key, command, ...)
  if not redis.acl_check_cmd(command, key, ...) then
    error(redis.error_reply('NOPERM this user has no permissions to run the \'' ..
      string.lower(command) .. '\' command on ' .. key .. ' (checked before writing anything)'))
  end
end

local function append(list, name, value)
  list[#list + 1] = name
  list[#list + 1] = value
end

-- redis.call(command, key, ...items), in calls of at most 1,000 items (an even count, so HSET's
-- pairs stay whole): unpack has a bound on how many values it returns.
local function call_in_chunks(command, key, items)
  for first = 1, #items, 1000 do
    redis.call(command, key, unpack(items, first, math.min(first + 999, #items)))
  end
end

-- Compare-and-set one record: write the state, the alias and new outbox entries only if the
-- stored version is still the one the worker loaded. Atomic: all of it or none.
--   KEYS[1]  the record's hash
--   ARGV[1]  expected version ("0" for a new record)
--   ARGV[2]  "1" if ARGV[3] is a new state, "0" to keep the stored one
--   ARGV[3]  encoded state
--   ARGV[4]  alias ("" for none)
--   ARGV[5]  TTL in seconds (inactive records expire)
--   ARGV[6..] pairs of outbox entry name, value
-- Returns {1, new version} on success, {0, current version} on conflict.

-- Version 3: as version 2, plus parts (hash fields p:<name>, an account's members) written or
-- removed one by one, so an update sends only what changed.
--   ARGV[1..5] as in version 2
--   ARGV[6]   the number of outbox pairs that follow
--   ARGV[7..] pairs of outbox entry name, value; then pairs of part name, value ("" removes it)
local function commit_record_v3(keys, args)
  local key = keys[1]
  local current = redis.call('HGET', key, 'v') or '0'
  if current ~= args[1] then
    return {0, tonumber(current)}
  end
  local parts_from = 7 + 2 * tonumber(args[6])
  local version = tonumber(current) + 1
  -- One HSET of every field written and one HDEL of the parts removed, not a call a field: each
  -- redis.call costs about what the write it makes does.
  local written = {'v', version}
  if args[2] == '1' then
    append(written, 's', args[3])
  end
  if args[4] ~= '' then
    append(written, 'a', args[4])
  end
  for i = 7, parts_from - 1, 2 do
    append(written, 'o:' .. args[i], args[i + 1])
  end
  local removed = {}
  for i = parts_from, #args, 2 do
    if args[i + 1] == '' then
      removed[#removed + 1] = 'p:' .. args[i]
    else
      append(written, 'p:' .. args[i], args[i + 1])
    end
  end
  -- EXPIRE and HDEL come after the first write (HSET); see require_allowed.
  require_allowed(key, 'EXPIRE', args[5])
  if #removed > 0 then
    require_allowed(key, 'HDEL', removed[1])
  end
  call_in_chunks('HSET', key, written)
  call_in_chunks('HDEL', key, removed)
  redis.call('EXPIRE', key, tonumber(args[5]))
  return {1, version}
end

local function commit_record(keys, args)
  -- Version 2 (no parts): the same as version 3 with every extra pair an outbox entry. Kept so
  -- workers of the previous release keep committing during a rolling upgrade.
  local v3 = {args[1], args[2], args[3], args[4], args[5], tostring((#args - 5) / 2)}
  for i = 6, #args do
    v3[#v3 + 1] = args[i]
  end
  return commit_record_v3(keys, v3)
end

-- Remove delivered outbox entries, each only if it still holds what was delivered (a newer
-- entry written since must stay).
--   KEYS[1] the record's hash; ARGV pairs of entry name, delivered value
-- Returns how many entries were removed.
local function ack_entry(keys, args)
  local removed = 0
  for i = 1, #args, 2 do
    local field = 'o:' .. args[i]
    if redis.call('HGET', keys[1], field) == args[i + 1] then
      removed = removed + redis.call('HDEL', keys[1], field)
    end
  end
  return removed
end

-- Remove a fired timer, but only if it was not moved to another time since it was read.
--   KEYS[1] the timer index (sorted set); ARGV[1] member; ARGV[2] the due time that fired
local function unschedule_timer(keys, args)
  local score = redis.call('ZSCORE', keys[1], args[1])
  if score and tonumber(score) == tonumber(args[2]) then
    return redis.call('ZREM', keys[1], args[1])
  end
  return 0
end

-- Move a sorted-set entry to a new score (or remove it), only if it still has the score the
-- caller read: another worker that moved it meanwhile knows better.
--   KEYS[1] the sorted set; ARGV[1] member; ARGV[2] the score read; ARGV[3] new score ("": remove)
local function reschedule(keys, args)
  local score = redis.call('ZSCORE', keys[1], args[1])
  if not score or tonumber(score) ~= tonumber(args[2]) then
    return 0
  end
  if args[3] == '' then
    return redis.call('ZREM', keys[1], args[1])
  end
  redis.call('ZADD', keys[1], args[3], args[1])
  return 1
end

-- Index members at a due time, or move them earlier; one indexed at or before it moves a
-- millisecond earlier still. A sweep that read the old due and applied every point its account
-- had then removes the member only if it is still at that due (ls_reschedule_v1): left there,
-- the point this caller is about to commit would wait in the account with nothing to sweep it.
--   KEYS[1] the sorted set; ARGV: pairs of member, due
local function schedule_earliest(keys, args)
  for i = 1, #args, 2 do
    local due = tonumber(args[i + 1])
    local score = redis.call('ZSCORE', keys[1], args[i])
    if score and tonumber(score) <= due then
      due = tonumber(score) - 0.001
    end
    redis.call('ZADD', keys[1], due, args[i])
  end
  return #args / 2
end

-- Opens a consumer group's state (state/progress.py): the incarnation another worker opened, or
-- this one with its fields (every input partition marked 0 when the state was lost). HGET, not
-- EXISTS: the least-privilege user's commands (leadstream/acls.py).
local function open_progress(keys, args)
  local found = redis.call('HGET', keys[1], 'incarnation')
  if found then return found end
  redis.call('HSET', keys[1], unpack(args))
  return args[2]
end

redis.register_function('ls_open_progress_v1', open_progress)
redis.register_function('ls_reschedule_v1', reschedule)
redis.register_function('ls_schedule_earliest_v1', schedule_earliest)
redis.register_function('ls_commit_record_v2', commit_record)
redis.register_function('ls_commit_record_v3', commit_record_v3)
redis.register_function('ls_unschedule_timer_v2', unschedule_timer)
redis.register_function('ls_ack_entry_v2', ack_entry)

-- Choose a rep for a handoff and record the assignment (the router's assignment functions).
--   KEYS[1] assignments hash (handoff id -> "rep|reason|source"), KEYS[2] sticky hash (account ->
--   rep), KEYS[3] round-robin counter of the queue, KEYS[4] the day's load hash (rep -> count)
--   handoff, account ("" for none), sticky ("1" if accounts are sticky): the ids; reps: ARGV
--   from index ``first`` on, pairs of rep id, capacity per day
-- The reason is sticky, round_robin or overflow (every rep at capacity: the rep with the fewest
-- assignments today takes it).
local function choose_rep(keys, args, handoff, account, sticky, first, source)
  -- Every write after the first (INCR or HSET) asked for before it (see require_allowed).
  require_allowed(keys[1], 'HSET', handoff, '')
  if account ~= '' then require_allowed(keys[2], 'HSETNX', account, '') end
  require_allowed(keys[4], 'HINCRBY', '', '1')
  require_allowed(keys[4], 'EXPIRE', '172800')
  local rep, reason
  if account ~= '' and sticky == '1' then
    rep = redis.call('HGET', keys[2], account)
    if rep then reason = 'sticky' end
  end
  if not rep then
    local n = (#args - first + 1) / 2
    local start = redis.call('INCR', keys[3])
    local best, best_load
    for i = 0, n - 1 do
      local index = ((start + i) % n) * 2 + first
      local candidate, capacity = args[index], tonumber(args[index + 1])
      local load = tonumber(redis.call('HGET', keys[4], candidate) or '0')
      if load < capacity then
        rep, reason = candidate, 'round_robin'
        break
      end
      if not best_load or load < best_load then best, best_load = candidate, load end
    end
    if not rep then rep, reason = best, 'overflow' end
  end
  local value = rep .. '|' .. reason
  if source then value = value .. '|' .. source end
  redis.call('HSET', keys[1], handoff, value)
  if account ~= '' then redis.call('HSETNX', keys[2], account, rep) end
  redis.call('HINCRBY', keys[4], rep, 1)
  redis.call('EXPIRE', keys[4], 172800)
  return rep .. '|' .. reason
end

-- Version 2: ARGV[1] handoff id, ARGV[2] account, ARGV[3] sticky, ARGV[4..] reps.
-- Returns "rep|reason"; a handoff assigned before gets its recorded assignment.
local function assign_handoff(keys, args)
  local existing = redis.call('HGET', keys[1], args[1])
  if existing then
    local rep, reason = string.match(existing, '^([^|]*)|([^|]*)')
    return rep .. '|' .. reason
  end
  return choose_rep(keys, args, args[1], args[2], args[3], 4, nil)
end

-- Version 3: as version 2 with ARGV[4] the handoff record's place ("topic:partition:offset") and
-- the reps from ARGV[5]. Returns "rep|reason|status": new (assigned now), retry (the same record
-- again, after a crash: its assignment may not have been published) or duplicate (another record
-- of a handoff already assigned: its assignment is published by that record's processing).
local function assign_handoff_v3(keys, args)
  local existing = redis.call('HGET', keys[1], args[1])
  if existing then
    local rep, reason, source = string.match(existing, '^([^|]*)|([^|]*)|?(.*)$')
    local status = 'duplicate'
    if source == args[4] then status = 'retry' end
    return rep .. '|' .. reason .. '|' .. status
  end
  return choose_rep(keys, args, args[1], args[2], args[3], 5, args[4]) .. '|new'
end

redis.register_function('ls_assign_handoff_v2', assign_handoff)
redis.register_function('ls_assign_handoff_v3', assign_handoff_v3)
