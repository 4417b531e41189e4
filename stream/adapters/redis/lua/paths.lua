-- Add one batch's path counts and report counters of one source partition, summed over
-- the offsets past the partition's fence, if the fence is still the value they were
-- summed from (compare-and-set); then move the fence to the batch's last offset.
-- KEYS[1] path counts hash   KEYS[2] the source partition's fence (last applied offset)
-- KEYS[3..] the partition's report hashes (one per UTC day) the counters go to
-- ARGV[1] the fence the sums were made past (-1: none)   ARGV[2] the batch's last offset
-- ARGV[3] max distinct paths   ARGV[4] TTL of the path counts and the fence (ms)
-- ARGV[5] max counters per report hash   ARGV[6] number of paths P
-- then P groups of 4: path, conversions, value_micros, nulls
-- then groups of 5: report hash (index into KEYS), its expiry (epoch ms), field, the field
-- folded into '(other)', amount
-- Returns 0 (nothing applied) when the fence moved since it was read, else 1.
-- Path counts: fields c|<path>, v|<path>, n|<path> (integers) and '#' = distinct paths; once
-- '#' reaches the cap, a new path is counted under '(other)'. Report counters: a new field
-- goes to its folded field once the hash holds the maximum number of fields.
local fence = tonumber(redis.call('GET', KEYS[2]) or '-1')
if fence ~= tonumber(ARGV[1]) then
  return 0
end
local cap = tonumber(ARGV[3])
local counters_cap = tonumber(ARGV[5])
local first_report = 7 + 4 * tonumber(ARGV[6])
for i = 7, first_report - 1, 4 do
  local path = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], 'n|' .. path) == 0 then
    if tonumber(redis.call('HGET', KEYS[1], '#') or '0') >= cap then
      path = '(other)'
    end
    if redis.call('HSETNX', KEYS[1], 'n|' .. path, 0) == 1 then
      redis.call('HINCRBY', KEYS[1], '#', 1)
    end
  end
  redis.call('HINCRBY', KEYS[1], 'c|' .. path, ARGV[i + 1])
  redis.call('HINCRBY', KEYS[1], 'v|' .. path, ARGV[i + 2])
  redis.call('HINCRBY', KEYS[1], 'n|' .. path, ARGV[i + 3])
end
local expiries, incoming, roomy = {}, {}, {}
for i = first_report, #ARGV, 5 do
  local k = tonumber(ARGV[i])
  incoming[k] = (incoming[k] or 0) + 1
end
for k, n in pairs(incoming) do  -- a hash with room for every field of this call skips the checks
  roomy[k] = redis.call('HLEN', KEYS[k]) + n <= counters_cap
end
for i = first_report, #ARGV, 5 do
  local k = tonumber(ARGV[i])
  local field = ARGV[i + 2]
  if not roomy[k] and redis.call('HEXISTS', KEYS[k], field) == 0
      and redis.call('HLEN', KEYS[k]) >= counters_cap then
    field = ARGV[i + 3]
  end
  redis.call('HINCRBY', KEYS[k], field, ARGV[i + 4])
  expiries[KEYS[k]] = ARGV[i + 1]
end
for key, at in pairs(expiries) do
  redis.call('PEXPIREAT', key, at)
end
if tonumber(ARGV[2]) > fence then
  redis.call('SET', KEYS[2], ARGV[2])
end
for k = 1, 2 do
  redis.call('PEXPIRE', KEYS[k], ARGV[4])
end
return 1
