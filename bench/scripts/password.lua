-- wrk script for POST /user_management/authenticate, grant password (a demo-seed user).
--   wrk -t1 -c32 -d8s -s password.lua URL/user_management/authenticate -- EMAIL PASSWORD [CLIENT_ID] [API_KEY]
-- Every request creates a session, so this also shows whether memory grows per sign-in.
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format(
    '{"grant_type":"password","client_id":"%s","client_secret":"%s","email":"%s","password":"%s"}',
    args[3] or "client_emulator", args[4] or "sk_test_default", args[1], args[2])
end
