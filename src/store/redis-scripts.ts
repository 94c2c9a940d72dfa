/**
 * Lua scripts of the Redis store. Each multi-step operation is one script, so it is atomic (Redis runs a
 * script without interleaving other commands) and costs one round trip.
 *
 * Numbers: Redis Lua numbers are doubles, exact for integers up to 2^53; epoch milliseconds and counts
 * are far below that. Integers are written with string.format('%d') (never tostring, which switches to
 * exponent notation for large values).
 *
 * Keys: scripts that touch the pending index derive its key from the verification's fields (prefix passed
 * in ARGV). That is fine on a single Redis or a primary/replica setup, not on Redis Cluster (keys must be
 * declared for slot routing there): Cluster is not supported.
 */

/**
 * consumeLimits: the bucketed sliding window of src/engine/window.ts, for all specs of a request at once.
 * KEYS[i]: counter key of spec i (duplicates allowed). ARGV[1]: now; ARGV[2+3(i-1)..]: limit, windowMs, cost.
 * State string: "slotStart:count,slotStart:count", oldest first (same as codec.ts encodeWindow).
 * Returns {allowed (1|0), counts[], denied[] as flat (specIndex, retryAfterMs) pairs}.
 * Mirrors codec.ts applyLimits: phase 1 evaluates every spec against the stored states; only if all allow,
 * phase 2 prunes + adds each spec's cost in order (cost 0 writes nothing) and writes each key with
 * PX = its state expiry - now.
 */
const consumeLimitsLua = (n: string, onAllowed: string) => `
local now = tonumber(ARGV[1])
local n = ${n}

local function slotMs(w)
  local s = math.ceil(w / 60)
  if s < 1 then s = 1 end
  return s
end

local function parse(str)
  local st = {}
  if str then
    for a, b in string.gmatch(str, '(%-?%d+):(%-?%d+)') do
      st[#st + 1] = { tonumber(a), tonumber(b) }
    end
  end
  return st
end

-- window.ts prune: drop slots that no longer overlap the window ending at now. Returns a new table.
local function prune(st, w)
  local sm = slotMs(w)
  local horizon = now - w
  local i = 1
  while i <= #st and st[i][1] + sm <= horizon do i = i + 1 end
  local out = {}
  for j = i, #st do out[#out + 1] = { st[j][1], st[j][2] } end
  return out
end

local function countOf(st)
  local c = 0
  for _, s in ipairs(st) do c = c + s[2] end
  return c
end

-- window.ts retryAfterMs, on a pruned state.
local function retryAfter(st, limit, w, cost)
  if cost > limit then return w end
  local sm = slotMs(w)
  local total = countOf(st)
  for _, s in ipairs(st) do
    if total + cost <= limit then break end
    total = total - s[2]
    local freeAt = s[1] + sm + w
    if total + cost <= limit then return math.max(1, freeAt - now) end
  end
  if total + cost <= limit then return 0 end
  return w
end

local stored = {}
for i = 1, n do
  local k = KEYS[i]
  if stored[k] == nil then stored[k] = parse(redis.call('GET', k)) end
end

local counts = {}
local denied = {}
for i = 1, n do
  local limit = tonumber(ARGV[3 * i - 1])
  local w = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local p = prune(stored[KEYS[i]], w)
  local c = countOf(p)
  counts[i] = c
  if c + cost > limit then
    denied[#denied + 1] = i
    denied[#denied + 1] = retryAfter(p, limit, w, cost)
  end
end
if #denied > 0 then return { 0, counts, denied } end

local current = {}
local order = {}
for i = 1, n do
  local k = KEYS[i]
  local w = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  -- cost 0 is a read: nothing is written (see codec.ts applyLimits).
  if cost > 0 then
    local base = stored[k]
    if current[k] then base = current[k].st else order[#order + 1] = k end
    local st = prune(base, w)
    local sm = slotMs(w)
    local slot = math.floor(now / sm) * sm
    local last = st[#st]
    if last and last[1] == slot then last[2] = last[2] + cost else st[#st + 1] = { slot, cost } end
    counts[i] = counts[i] + cost
    current[k] = { st = st, w = w }
  end
end

for _, k in ipairs(order) do
  local st = current[k].st
  local w = current[k].w
  local parts = {}
  for j, s in ipairs(st) do parts[j] = string.format('%d:%d', s[1], s[2]) end
  -- window.ts expiresAt: newest slot start + slot + window. Always > now right after an add.
  local ttl = st[#st][1] + slotMs(w) + w - now
  if ttl < 1 then ttl = 1 end
  redis.call('SET', k, table.concat(parts, ','), 'PX', string.format('%d', ttl))
end
${onAllowed}
return { 1, counts, {} }
`;

export const CONSUME_LIMITS = consumeLimitsLua('#KEYS', '');

/**
 * Write a journal entry: hash `h` (key -> JSON) and time index `z` (key -> at); the entry's key, at and JSON
 * are ARGV[a + 1], ARGV[a + 2], ARGV[a + 3] (`a`: a Lua expression).
 */
const putJournalLua = (h: string, z: string, a: string) => `
redis.call('HSET', ${h}, ARGV[${a} + 1], ARGV[${a} + 3])
redis.call('ZADD', ${z}, ARGV[${a} + 2], ARGV[${a} + 1])`;

/** useOnce. KEYS[1]: token key. ARGV: now, ttlMs. The value is the expiry in the caller's time. */
export const USE_ONCE = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > now then return 0 end
redis.call('SET', KEYS[1], string.format('%d', now + ttl), 'PX', string.format('%d', ttl))
return 1
`;

/**
 * The body of createVerification with its keys at KEYS[k + 1], KEYS[k + 2] and its arguments from ARGV[a + 1]
 * to ARGV[last] (`k`, `a` and `last`: Lua expressions), shared by CREATE_VERIFICATION and
 * CONSUME_LIMITS_AND_CREATE(_JOURNALED).
 */
const createVerificationLua = (k: string, a: string, last = '#ARGV') => `
local vk = KEYS[${k} + 1]
local pk = KEYS[${k} + 2]
local o = ${a}
local ttl = tonumber(ARGV[o + 1])
redis.call('DEL', vk)
redis.call('HSET', vk, unpack(ARGV, o + 5, ${last}))
redis.call('PEXPIRE', vk, ARGV[o + 1])
if ARGV[o + 4] == '1' then
  redis.call('ZADD', pk, ARGV[o + 2], ARGV[o + 3])
  if redis.call('PTTL', pk) < ttl then redis.call('PEXPIRE', pk, ARGV[o + 1]) end
end`;

/**
 * createVerification. KEYS[1]: verification hash; KEYS[2]: pending index (zset id -> createdAt).
 * ARGV: ttlMs, createdAt, id, isPending ('1'|'0'), then field/value pairs.
 */
export const CREATE_VERIFICATION = `${createVerificationLua('0', '0')}
return 1
`;

/**
 * consumeLimitsAndCreate: CONSUME_LIMITS over KEYS[1..n], then (only when every limit allowed, so a refusal
 * creates nothing) CREATE_VERIFICATION with KEYS[n+1], KEYS[n+2]. ARGV: now, n limit triples, then
 * CREATE_VERIFICATION's ARGV (ttlMs, createdAt, id, isPending, field/value pairs).
 */
export const CONSUME_LIMITS_AND_CREATE = consumeLimitsLua('#KEYS - 2', createVerificationLua('n', '3 * n + 1'));

/**
 * consumeLimitsAndCreate with a journal entry (Store.consumeLimitsAndCreate's `journal`): as
 * CONSUME_LIMITS_AND_CREATE, plus the journal's two keys last in KEYS and the entry's key, at and JSON last in
 * ARGV, written with the verification (so only when every limit allowed).
 */
export const CONSUME_LIMITS_AND_CREATE_JOURNALED = consumeLimitsLua(
  '#KEYS - 4',
  `${createVerificationLua('n', '3 * n + 1', '#ARGV - 3')}
${putJournalLua('KEYS[#KEYS - 1]', 'KEYS[#KEYS]', '#ARGV - 3')}`,
);

/**
 * findPending. KEYS[1]: pending index. ARGV: now, verification key prefix, to, channel.
 * Newest first, a tarpit only when nothing else is pending; ids that are gone, not pending or expired are
 * removed from the index on the way (none of them can become a match again: addCode refuses expired ones).
 */
export const FIND_PENDING = `
local now = tonumber(ARGV[1])
local ids = redis.call('ZREVRANGE', KEYS[1], 0, -1)
local tarpit = nil
for _, id in ipairs(ids) do
  local k = ARGV[2] .. id
  local f = redis.call('HMGET', k, 'status', 'expiresAt', 'to', 'channel', 'tarpit')
  -- to/channel re-checked: an id re-created for another destination must not match here.
  if f[1] == 'pending' and tonumber(f[2]) > now and f[3] == ARGV[3] and f[4] == ARGV[4] then
    -- A tarpit only if nothing real is pending (Store.findPending).
    if f[5] ~= '1' then return redis.call('HGETALL', k) end
    if not tarpit then tarpit = k end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
if tarpit then return redis.call('HGETALL', tarpit) end
return false
`;

/**
 * addCode. KEYS[1]: verification hash; with a journal entry (Store.addCode's `journal`), KEYS[2], KEYS[3]: the
 * journal's keys. ARGV: now, code JSON, keep (>= 1), resendAfter, code expiresAt, retentionMs, pending-index
 * key prefix, then the entry's key, at and JSON. Codes are newline-separated JSON objects, newest last, so the
 * script never has to decode or re-encode JSON.
 */
export const ADD_CODE = `
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'codes', 'to', 'channel')
if f[1] ~= 'pending' or tonumber(f[2]) <= now then return false end
local codes = {}
for line in string.gmatch(f[3] or '', '[^\\n]+') do codes[#codes + 1] = line end
codes[#codes + 1] = ARGV[2]
local keep = tonumber(ARGV[3])
local kept = {}
for i = math.max(1, #codes - keep + 1), #codes do kept[#kept + 1] = codes[i] end
redis.call('HSET', KEYS[1], 'codes', table.concat(kept, '\\n'), 'expiresAt', ARGV[5], 'resendAfter', ARGV[4],
  'lastSentAt', ARGV[1], 'updatedAt', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'sends', 1)
local ttl = tonumber(ARGV[5]) - now + tonumber(ARGV[6])
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
local pk = ARGV[7] .. f[4] .. ':' .. f[5]
local pt = redis.call('PTTL', pk)
if pt ~= -2 and pt < ttl then redis.call('PEXPIRE', pk, string.format('%d', ttl)) end
if KEYS[3] then${putJournalLua('KEYS[2]', 'KEYS[3]', '7')}
end
return redis.call('HGETALL', KEYS[1])
`;

/**
 * withdrawCode. KEYS[1]: verification hash. ARGV: now, the code's hash. Removes the code line whose JSON has
 * that hash (a plain substring match on "hash":"…": hashes are base64url, so they hold no quote or escape),
 * and sets expiresAt to the latest code left's (codec.ts expiryAfterWithdrawal). The key's TTL may stay longer.
 */
export const WITHDRAW_CODE = `
local f = redis.call('HMGET', KEYS[1], 'status', 'codes', 'expiresAt')
if f[1] ~= 'pending' then return 0 end
local needle = '"hash":"' .. ARGV[2] .. '"'
local kept = {}
local found = 0
local latest = nil
for line in string.gmatch(f[2] or '', '[^\\n]+') do
  if string.find(line, needle, 1, true) then found = 1 else
    kept[#kept + 1] = line
    local e = tonumber(string.match(line, '"expiresAt":(%d+)'))
    if e and (latest == nil or e > latest) then latest = e end
  end
end
if found == 0 then return 0 end
local expiresAt = f[3]
if latest then expiresAt = string.format('%d', latest) end
redis.call('HSET', KEYS[1], 'codes', table.concat(kept, '\\n'), 'expiresAt', expiresAt, 'updatedAt', ARGV[1])
return 1
`;

/**
 * reserveAttempt. KEYS[1]: verification hash. ARGV: now, pending-index key prefix.
 * Returns {reason, hash fields} with reason 'ok' | 'not_found' | 'expired' | 'locked' | 'not_pending'.
 */
export const RESERVE_ATTEMPT = `
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'attempts', 'maxAttempts', 'to', 'channel', 'id')
if not f[1] then return { 'not_found' } end
if f[1] ~= 'pending' then
  local r = 'not_pending'
  if f[1] == 'locked' then r = 'locked' elseif f[1] == 'expired' then r = 'expired' end
  return { r, redis.call('HGETALL', KEYS[1]) }
end
if tonumber(f[2]) <= now then return { 'expired', redis.call('HGETALL', KEYS[1]) } end
-- Out of attempts: refused, but the status is left to the attempts in flight (see Store.reserveAttempt).
if tonumber(f[3]) >= tonumber(f[4]) then
  return { 'locked', redis.call('HGETALL', KEYS[1]) }
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1])
return { 'ok', redis.call('HGETALL', KEYS[1]) }
`;

/** transition. KEYS[1]: verification hash. ARGV: status, now, pending-index key prefix, extra field/value pairs. */
export const TRANSITION = `
local f = redis.call('HMGET', KEYS[1], 'status', 'to', 'channel', 'id')
if f[1] ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAt', ARGV[2])
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
redis.call('ZREM', ARGV[3] .. f[2] .. ':' .. f[3], f[4])
return 1
`;

/** putApiKey. KEYS[1]: key hash; KEYS[2]: set of ids. ARGV: id, field/value pairs. */
export const PUT_API_KEY = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

/** listApiKeys. KEYS[1]: set of ids. ARGV[1]: key prefix. Returns one HGETALL array per key. */
export const LIST_API_KEYS = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then out[#out + 1] = h else redis.call('SREM', KEYS[1], id) end
end
return out
`;

/** revokeApiKey. KEYS[1]: key hash. ARGV: now. */
export const REVOKE_API_KEY = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'revokedAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1])
return 1
`;

/** touchApiKey. KEYS[1]: key hash. ARGV: now. Never moves lastUsedAt backwards. */
export const TOUCH_API_KEY = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'lastUsedAt')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1])
return 1
`;

/** putListEntry. KEYS[1]: entries hash (id -> JSON); KEYS[2]: version counter. ARGV: id, JSON. */
export const PUT_LIST_ENTRY = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
`;

/** removeListEntry. KEYS as PUT_LIST_ENTRY. ARGV: id. */
export const REMOVE_LIST_ENTRY = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
`;

/**
 * Remove list entries expired at ARGV[1]. KEYS as PUT_LIST_ENTRY. cjson is only used to read expiresAt,
 * never to re-encode (it would alter numbers and empty arrays). Does not bump the version: the effective
 * lists did not change (readers already ignore expired entries).
 */
export const SWEEP_LIST_ENTRIES = `
local now = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local ok, e = pcall(cjson.decode, all[i + 1])
  if ok and type(e) == 'table' and type(e.expiresAt) == 'number' and e.expiresAt <= now then
    redis.call('HDEL', KEYS[1], all[i])
    n = n + 1
  end
end
return n
`;

/** getSetting. KEYS[1]: settings hash (key -> JSON); KEYS[2]: expiry zset. ARGV: key, now. */
export const GET_SETTING = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
local e = redis.call('ZSCORE', KEYS[2], ARGV[1])
if e and tonumber(e) <= tonumber(ARGV[2]) then return false end
return v
`;

/**
 * putSetting. KEYS as GET_SETTING, and KEYS[3]: the settings' key index (a sorted set of the keys, all score
 * 0, for prefix listings by ZRANGEBYLEX). ARGV: key, JSON, expiresAt ('' = never), now.
 * Also deletes up to 100 settings that expired by `now`, so TTL'd settings cannot pile up.
 */
export const PUT_SETTING = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
if ARGV[3] == '' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)
for _, k in ipairs(old) do
  redis.call('HDEL', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
  redis.call('ZREM', KEYS[3], k)
end
return 1
`;

/** deleteSetting. KEYS as PUT_SETTING. ARGV: key. */
export const DELETE_SETTING = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`;

/**
 * deleteSetting and deleteJournal: a field of a hash and its entry in the hash's time index. KEYS[1]: the hash
 * (settings, journal); KEYS[2]: its sorted set (expiries, journal times). ARGV: key.
 */
export const DELETE_INDEXED_FIELD = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

/**
 * putJournal. KEYS[1]: hash key -> JSON; KEYS[2]: zset key -> at. ARGV: key, at, JSON. Its own hash, not the
 * settings': listSettings walks that one every second, and the journal holds every send in flight.
 */
export const PUT_JOURNAL = `${putJournalLua('KEYS[1]', 'KEYS[2]', '0')}
return 1
`;

/**
 * listJournal. KEYS as PUT_JOURNAL. ARGV: before, limit. Returns [key, at, JSON, ...], oldest first. A time
 * without its entry (the hash field evicted) is removed, so it cannot hold a place in every later page.
 */
export const LIST_JOURNAL = `
local ks = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ks, 2 do
  local v = redis.call('HGET', KEYS[1], ks[i])
  if v then
    out[#out + 1] = ks[i]
    out[#out + 1] = ks[i + 1]
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[2], ks[i])
  end
end
return out
`;

/** Lua: replace the key index `lex` (a sorted set, scores 0) with the keys of the hash `hash`, in chunks of 500. */
function rebuildKeyIndexLua(hash: string, lex: string): string {
  return `  redis.call('DEL', ${lex})
  local ks = redis.call('HKEYS', ${hash})
  for i = 1, #ks, 500 do
    local args = {}
    for j = i, math.min(i + 499, #ks) do
      args[#args + 1] = 0
      args[#args + 1] = ks[j]
    end
    redis.call('ZADD', ${lex}, unpack(args))
  end`;
}

/**
 * listSettings. KEYS as PUT_SETTING. ARGV: prefix (literal, not a pattern), now. Returns key/value pairs.
 * Reads only the keys under the prefix (ZRANGEBYLEX on the key index): the settings hash also holds the hourly
 * stats documents, and walking it all (HGETALL) blocked Redis for 300 ms per listing after a week of them,
 * several listings a second per instance. When the index and the hash disagree in size (settings written or
 * swept by a version without the index, during a rolling upgrade), it is rebuilt from the hash's keys first.
 */
export const LIST_SETTINGS = `
local p = ARGV[1]
local now = tonumber(ARGV[2])
if redis.call('HLEN', KEYS[1]) ~= redis.call('ZCARD', KEYS[3]) then
${rebuildKeyIndexLua('KEYS[1]', 'KEYS[3]')}
end
local keys = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. p, '(' .. p .. '\\255')
local out = {}
for i = 1, #keys, 500 do
  local chunk = {}
  for j = i, math.min(i + 499, #keys) do chunk[#chunk + 1] = keys[j] end
  local vals = redis.call('HMGET', KEYS[1], unpack(chunk))
  for j, k in ipairs(chunk) do
    local v = vals[j]
    if v then
      local e = redis.call('ZSCORE', KEYS[2], k)
      if not e or tonumber(e) > now then
        out[#out + 1] = k
        out[#out + 1] = v
      end
    end
  end
end
return out
`;

/**
 * Delete every setting expired at ARGV[1] (KEYS as PUT_SETTING; KEYS[3], the key index, and KEYS[4], its
 * rebuild mark, optional). Returns how many.
 */
export const SWEEP_SETTINGS = `
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, k in ipairs(old) do
  redis.call('HDEL', KEYS[1], k)
  if KEYS[3] then redis.call('ZREM', KEYS[3], k) end
end
-- The key index is rebuilt from the hash's keys (no values) when the sizes differ, and every 10 minutes
-- fleet-wide (KEYS[4], a mark with that TTL) regardless: a version without the index that writes one setting
-- and sweeps another in one call leaves the sizes equal, which LIST_SETTINGS's check cannot see. Not on every
-- sweep: a rebuild blocks Redis for ~100 ms per 50,000 settings, and each instance sweeps every minute.
if KEYS[3] then
  local due = redis.call('HLEN', KEYS[1]) ~= redis.call('ZCARD', KEYS[3])
  if not due and KEYS[4] then due = redis.call('SET', KEYS[4], '1', 'PX', 600000, 'NX') end
  if due then
${rebuildKeyIndexLua('KEYS[1]', 'KEYS[3]')}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return #old
`;

/**
 * appendEvents. KEYS[1]: stream; KEYS[2]: last id ("ms-n"); optional KEYS[3], KEYS[4]: the journal's hash
 * and zset (PUT_JOURNAL), whose entry ARGV[2] goes in the same step. ARGV[1]: MAXLEN (approximate); ARGV[2]:
 * the journal key ('' without KEYS[3]); then (at, JSON) pairs. Entry id = ms-n with ms = max(at, previous
 * ms) and n in 0..999, so the stream is ordered like the seq and roughly by `at`, and XTRIM MINID <before>
 * never removes an event with at >= before (ms >= at). seq = ms * 1000 + n (exact in a double until the year
 * 2255).
 */
export const APPEND_EVENTS = `
if KEYS[3] then
  redis.call('HDEL', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
local last = redis.call('GET', KEYS[2])
local lms, ln = -1, 0
if last then
  local a, b = string.match(last, '^(%d+)-(%d+)$')
  lms = tonumber(a)
  ln = tonumber(b)
end
for i = 3, #ARGV, 2 do
  local at = math.floor(tonumber(ARGV[i]))
  local ms, n
  if at > lms then ms = at; n = 0 else ms = lms; n = ln + 1 end
  if n > 999 then ms = ms + 1; n = 0 end
  if ms <= 0 then ms = 0; if n == 0 then n = 1 end end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-%d', ms, n), 'e', ARGV[i + 1])
  lms = ms
  ln = n
end
if #ARGV >= 3 then redis.call('SET', KEYS[2], string.format('%d-%d', lms, ln)) end
return 1
`;
