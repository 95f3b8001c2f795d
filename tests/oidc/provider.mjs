// A real OpenID Connect provider on loopback for the users plugin's tests (panva's
// oidc-provider, OpenID-certified), with test accounts and groups.
//
//   node provider.mjs PORT REDIRECT_URI POST_LOGOUT_URI   (env ACCESS_TOKEN_TTL, seconds)
//
// Prints "ready <issuer>" when it listens. Its development login form accepts any password;
// the login name is the account id. POST /test/groups/<sub> with a JSON list of groups
// changes an account's groups (to test that removal from a group logs the user out); the
// JSON null drops the groups claim from the account's answers (userinfo and ID tokens).
// POST /test/groups-in-id-token-only/<sub> with JSON true makes userinfo leave the groups
// claim out while ID tokens (at login and on refresh) carry it, as some issuers do.
import http from 'node:http';
import Provider from 'oidc-provider';

const [port, redirectUri, postLogoutUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  ana: { name: 'Ana Lima', email: 'ana@example.org', groups: ['lab'] },
  bob: { name: 'Bob Stone', email: 'bob@example.org', groups: ['lab'] },
  root: { name: 'Root Admin', email: 'root@example.org', groups: ['lab-admins'] },
  eve: { name: 'Eve Outsider', email: 'eve@example.org', groups: ['guests'] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'junction',
      client_secret: 'junction-test-secret',
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [postLogoutUri],
      grant_types: ['authorization_code', 'refresh_token'],
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  pkce: { required: () => true },
  // ID tokens carry the scopes' claims (groups too), not just sub, as many issuers do.
  conformIdTokenClaims: false,
  // Refresh tokens for the confidential client even without offline_access, as Keycloak
  // does; revocation (of any token: the whole grant goes) lets a test withdraw a login.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: { revocation: { enabled: true, allowedPolicy: async () => true } },
  cookies: { keys: ['junction-oidc-test'] },
  // ACCESS_TOKEN_TTL (seconds) lets a test see access tokens expire.
  ttl: { AccessToken: Number(process.env.ACCESS_TOKEN_TTL ?? 3600) },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims(use) {
        const { groups, idTokenOnly, ...rest } = account;
        // null: the account's answers carry no groups claim at all
        const omit = groups === null || (idTokenOnly && use === 'userinfo');
        return omit ? { sub, preferred_username: sub, ...rest } : { sub, preferred_username: sub, ...rest, groups };
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = req.url.match(/^\/test\/(groups|groups-in-id-token-only)\/([a-z]+)$/);
  if (req.method === 'POST' && match) {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const field = match[1] === 'groups' ? 'groups' : 'idTokenOnly';
      accounts[match[2]][field] = JSON.parse(body);
      res.writeHead(204);
      res.end();
    });
    return;
  }
  callback(req, res);
});
server.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
