-- Neovim's own language client (vim.lsp, Neovim 0.7) runs a whole session against groupd: it starts
-- `groupd stdio` as it starts any language server, initialize/initialized and
-- workspace/didChangeConfiguration, the five Group API calls, a call answered `false` and one
-- refused with -32602, a $/cancelRequest for a call already answered, then client.stop()
-- (shutdown, then exit) and groupd's own exit status: 0, not a signal. Every answer is compared
-- exactly; anything Neovim reports about groupd's messages fails the test. The script ends Neovim
-- with status 0 once all is checked; on a failed check, `cquit 1` ends it with status 1.
--
--   GROUPD_BIN=target/debug/groupd GROUPD_DB=/tmp/x.redb \
--     nvim --headless --clean -c 'luafile tests/lifecycle-clients/neovim_session.lua' -c 'cquit 1'

local version = vim.version()
io.stdout:write(string.format('Neovim %d.%d.%d, vim.lsp.start_client, stdio, Content-Length\n',
  version.major, version.minor, version.patch))

--- check(what, got, expected): got and expected are equal (vim.deep_equal), or the script fails.
local function check(what, got, expected)
  assert(vim.deep_equal(got, expected),
    string.format('%s: got %s, expected %s', what, vim.inspect(got), vim.inspect(expected)))
end

-- README "From an editor": Neovim
local groupd = os.getenv('GROUPD_BIN') or 'groupd'
local db = os.getenv('GROUPD_DB') or 'groupd.redb'
local complaints = {} -- what Neovim reports about groupd's messages
local exited -- { code, signal } once groupd has exited
local client_id = vim.lsp.start_client({
  name = 'groupd',
  cmd = { groupd, 'stdio', '--db', db },
  on_init = function(client)
    client.notify('workspace/didChangeConfiguration', { settings = vim.empty_dict() })
  end,
  on_error = function(code, err) table.insert(complaints, { vim.lsp.client_errors[code], err }) end,
  on_exit = function(code, signal) exited = { code, signal } end,
})
local client = vim.lsp.get_client_by_id(client_id)
assert(vim.wait(5000, function() return client.initialized end), 'initialize was not answered')

local function call(method, params)
  local answer, failure = client.request_sync(method, params, 5000)
  return assert(answer, method .. ': ' .. tostring(failure)) -- { result = … } or { err = … }
end
check('createGroup', call('createGroup', { 'Ops', 'ops' }), { result = 1 })
check('createGroup named', call('createGroup', { name = 'Dev' }), { result = 2 })
check('getGroup', call('getGroup', { 1 }), { result = { id = '1', external_id = 'ops', name = 'Ops' } })
check('updateGroup', call('updateGroup', { group_id = '1', name = 'Operations' }), { result = true })
check('getAllGroups', call('getAllGroups'), { result = {
  { id = '2', external_id = '', name = 'Dev' },
  { id = '1', external_id = 'ops', name = 'Operations' },
} })
check('removeGroup', call('removeGroup', { 2 }), { result = true })
check('getGroup of a removed id', call('getGroup', { 2 }), { result = false })
check('getGroup abc', call('getGroup', { 'abc' }),
  { err = { code = -32602, message = 'Invalid params', data = 'group_id must be an integer' } })
-- end of snippet

-- A cancel for a call already answered is ignored (no answer: Neovim would complain of one).
local done = false
local _, request_id = client.request('getGroup', { 1 }, function() done = true end)
assert(vim.wait(5000, function() return done end), 'getGroup was not answered')
client.cancel_request(request_id)
check('after the cancel', call('getAllGroups'), { result = { { id = '1', external_id = 'ops', name = 'Operations' } } })
check('server capabilities', client.server_capabilities, {})

-- README "From an editor": Neovim, stopping
client.stop() -- shutdown, then exit once shutdown is answered (SIGTERM if it is refused)
assert(vim.wait(5000, function() return exited ~= nil end), 'groupd did not exit after shutdown and exit')
check('exit code and signal', exited, { 0, 0 })
-- end of snippet
check('complaints', complaints, {})

io.stdout:write('ok: initialize, create, get, update, getAll, remove, false, -32602, cancel; stop, exit 0\n')
io.stdout:flush()
os.exit(0)
