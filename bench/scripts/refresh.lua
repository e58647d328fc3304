-- wrk script for POST /user_management/authenticate, grant refresh_token.
-- Refresh tokens are single-use, so every request takes the next unused line of a token
-- file written by the emulator_bench binary. Use ONE wrk thread (-t1): each thread has its
-- own Lua state and would otherwise reuse the same tokens.
--   wrk -t1 -c32 -d8s -s refresh.lua URL/user_management/authenticate -- TOKENS_FILE [CLIENT_ID] [API_KEY]
-- When the file runs out, the last token is resent and the emulator answers 400: watch wrk's
-- "Non-2xx or 3xx responses" line.
local tokens = {}
local i = 0
local client_id, api_key

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  client_id = args[2] or "client_emulator"
  api_key = args[3] or "sk_test_default"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if i < #tokens then i = i + 1 end
  local body = string.format(
    '{"grant_type":"refresh_token","client_id":"%s","client_secret":"%s","refresh_token":"%s"}',
    client_id, api_key, tokens[i])
  return wrk.format(nil, nil, nil, body)
end
