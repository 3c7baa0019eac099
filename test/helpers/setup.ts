// Runs before every test file. Keeps tests on loopback: undici and Node must never pick up a proxy from the
// environment of the machine running the suite.
for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) {
  delete process.env[name];
}
process.env.NO_PROXY = '*';
