-- bench/tokens.lua - a wrk script: GET the URL with "Authorization: Bearer T",
-- T taken in turn from a file of tokens (one a line, e.g. from
-- `fcgim8-token mint --count N`), so that consecutive requests carry distinct
-- tokens and a token comes back only after the whole file went by: every
-- request misses a verified-token cache smaller than the file.  Each wrk
-- thread starts at its own offset in the file; its connections take the next
-- token in turn.  See bench/README.md.
--   wrk -t2 -c64 -d5s --latency -s bench/tokens.lua URL -- TOKENS_FILE
local reqs, n, i = {}, 0, 0
local made = 0

function setup(thread)
   thread:set("tid", made)
   made = made + 1
end

function init(args)
   local path = args[1]
   assert(path, "usage: wrk ... -s tokens.lua URL -- TOKENS_FILE")
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      if #line > 0 then
         n = n + 1
         -- formatted once here: request() only hands out the strings
         reqs[n] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. line })
      end
   end
   f:close()
   assert(n > 0, "no tokens in " .. path)
   i = ((tid or 0) * 7919) % n
end

function request()
   i = i % n + 1
   return reqs[i]
end
