-- Admission against the limits shared through Redis, in one atomic call (EVALSHA).
--
-- Rate limits are a GCRA, the algorithm of the in-process `governor` limiters, with the same
-- meaning: KEYS[i] holds limit i's theoretical arrival time (TAT) in microseconds of Redis's own
-- clock (so the replicas' clocks never matter); ARGV[2i] is its emission interval T (60 s /
-- rate, in microseconds) and ARGV[2i+1] its burst tolerance tau = T * (burst - 1). A request is
-- admitted by a limit when now >= TAT - tau, and then TAT = max(TAT, now) + T. The key expires
-- when its bucket is full again, so idle keys cost nothing.
--
-- ARGV[1] is the number of rate limits. The limits are checked in order (the key's own, then
-- the global one); those before a refusing one have counted the request, as in process.
--
-- Then, when ARGV goes on, a concurrency lease: KEYS[rates + 1] is the sorted set of the key's
-- leases (member: lease id, score: when it expires, in milliseconds of Redis's clock). Expired
-- leases, left by a replica that crashed or lost Redis with requests in progress, are dropped
-- first; then a lease is granted while fewer than ARGV[2 * rates + 2] are held: member
-- ARGV[2 * rates + 3], for ARGV[2 * rates + 4] milliseconds (the replica renews it while the
-- request runs, and removes it when it ends).
--
-- Returns {0, 0} when every limit admits, else {i, microseconds until limit i would admit}
-- (i = rates + 1 for the lease, with a wait of one second).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local rates = tonumber(ARGV[1])
for i = 1, rates do
  local t = tonumber(ARGV[2 * i])
  local tau = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then
    tat = now
  end
  if now < tat - tau then
    return {i, tat - tau - now}
  end
  local next = tat + t
  -- %.0f: Lua would print a number this large in exponent form, losing microseconds.
  redis.call('SET', KEYS[i], string.format('%.0f', next),
    'PX', string.format('%.0f', math.ceil((next - now) / 1000) + 1000))
end
local lease = 2 * rates + 2
if ARGV[lease] then
  local key = KEYS[rates + 1]
  local now_ms = math.floor(now / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now_ms))
  if redis.call('ZCARD', key) >= tonumber(ARGV[lease]) then
    return {rates + 1, 1000000}
  end
  local ttl = tonumber(ARGV[lease + 2])
  redis.call('ZADD', key, string.format('%.0f', now_ms + ttl), ARGV[lease + 1])
  redis.call('PEXPIRE', key, ttl)
end
return {0, 0}
