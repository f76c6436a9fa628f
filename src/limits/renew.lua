-- Renew concurrency leases still in use: KEYS[i] is a key's lease set (see admit.lua) and
-- ARGV[i + 1] the lease in it; each expires ARGV[1] milliseconds from now (Redis's clock). A
-- lease that already expired and was dropped is not brought back (XX).
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', string.format('%.0f', now_ms + ttl), ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
