-- Add one batch's path-count and report-counter increments of one partition exactly once
-- (fenced by offset: an increment from an offset at or below the fence was applied before).
-- KEYS[1] path counts hash   KEYS[2] the partition's fence (last applied offset)
-- KEYS[3..] the partition's report hashes (one per UTC day) the counters go to
-- ARGV[1] highest offset of this batch on the partition   ARGV[2] max distinct paths
-- ARGV[3] TTL of the path counts and the fence (ms)   ARGV[4] number of path increments P
-- ARGV[5] max counters per report hash
-- then P groups of 5 in offset order: offset, path, conversions, value_micros, nulls
-- then groups of 6: offset, report hash (index into KEYS), its expiry (epoch ms), field,
-- the field folded into '(other)', amount
-- Path counts: fields c|<path>, v|<path>, n|<path> (integers) and '#' = distinct paths; once
-- '#' reaches the cap, a new path is counted under '(other)'. Report counters: a new field
-- goes to its folded field once the hash holds the maximum number of fields.
local fence = tonumber(redis.call('GET', KEYS[2]) or '-1')
local cap = tonumber(ARGV[2])
local counters_cap = tonumber(ARGV[5])
local first_report = 6 + 5 * tonumber(ARGV[4])
for i = 6, first_report - 1, 5 do
  if tonumber(ARGV[i]) > fence then
    local path = ARGV[i + 1]
    if redis.call('HEXISTS', KEYS[1], 'n|' .. path) == 0 then
      if tonumber(redis.call('HGET', KEYS[1], '#') or '0') >= cap then
        path = '(other)'
      end
      if redis.call('HSETNX', KEYS[1], 'n|' .. path, 0) == 1 then
        redis.call('HINCRBY', KEYS[1], '#', 1)
      end
    end
    redis.call('HINCRBY', KEYS[1], 'c|' .. path, ARGV[i + 2])
    redis.call('HINCRBY', KEYS[1], 'v|' .. path, ARGV[i + 3])
    redis.call('HINCRBY', KEYS[1], 'n|' .. path, ARGV[i + 4])
  end
end
local expiries = {}
for i = first_report, #ARGV, 6 do
  if tonumber(ARGV[i]) > fence then
    local key = KEYS[tonumber(ARGV[i + 1])]
    local field = ARGV[i + 3]
    if redis.call('HEXISTS', key, field) == 0 and redis.call('HLEN', key) >= counters_cap then
      field = ARGV[i + 4]
    end
    redis.call('HINCRBY', key, field, ARGV[i + 5])
    expiries[key] = ARGV[i + 2]
  end
end
for key, at in pairs(expiries) do
  redis.call('PEXPIREAT', key, at)
end
if tonumber(ARGV[1]) > fence then
  redis.call('SET', KEYS[2], ARGV[1])
end
for k = 1, 2 do
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
return 1
