/**
 * Resource Manager requests as RBAC sees them, for the role tests (rotation, remediation): each
 * request's action and the resource it targets, and how they compare with the grants the deployment
 * derives from the policy.
 */

/**
 * The RBAC action and the resource of a Resource Manager request (method, path without query), the
 * way Resource Manager authorizes it: `{namespace}/{types}/read` for a GET, `/write` for a PUT or
 * PATCH, `{namespace}/{types}/{verb}/action` for a POST to an action. Lower case.
 */
export function actionOf(method: string, path: string): { action: string; resource: string } {
  const m = /^(\/subscriptions\/[^/]+(?:\/resourceGroups\/[^/]+)?)\/providers\/([^/]+)\/(.+)$/i.exec(path);
  if (!m) throw new Error(`not a provider request: ${method} ${path}`);
  const segments = m[3]!.split('/');
  const types = segments.filter((_, i) => i % 2 === 0);
  const names = segments.filter((_, i) => i % 2 === 1);
  const verb = segments.length % 2 === 1 ? types.pop()! : undefined;
  // The resource is the typed path up to the last name; a subscription-level provider path (an
  // operation's status) is authorized at the subscription.
  const resource = /\/resourceGroups\//i.test(m[1]!)
    ? `${m[1]}/providers/${m[2]}/${types.map((t, i) => `${t}/${names[i]}`).join('/')}`
    : m[1]!;
  const base = `${m[2]}/${types.join('/')}`;
  const action =
    method === 'GET'
      ? `${base}${verb ? `/${verb}` : ''}/read`
      : verb
        ? `${base}/${verb}/action`
        : `${base}/write`;
  return { action: action.toLowerCase(), resource: resource.toLowerCase() };
}

/**
 * The calls no grant allows on the resource they target (an assignment covers its child resources),
 * and each granted action no call used on its scope (`role action on scope`); the roles granted.
 */
export function grantGaps(
  calls: ReadonlyArray<{ action: string; resource: string }>,
  access: {
    grants: ReadonlyArray<{ resourceId: string; role: string }>;
    roles: ReadonlyArray<{ name: string; actions: readonly string[] }>;
  },
): { ungranted: Array<{ action: string; resource: string }>; unused: string[]; roles: Set<string> } {
  const grants = access.grants.map((g) => ({
    scope: g.resourceId.toLowerCase(),
    role: g.role,
    actions: access.roles.find((r) => r.name === g.role)!.actions.map((a) => a.toLowerCase()),
  }));
  const under = (scope: string, resource: string) => resource === scope || resource.startsWith(`${scope}/`);
  return {
    ungranted: calls.filter(
      (c) => !grants.some((g) => under(g.scope, c.resource) && g.actions.includes(c.action)),
    ),
    unused: grants.flatMap((g) =>
      g.actions
        .filter((a) => !calls.some((c) => under(g.scope, c.resource) && c.action === a))
        .map((a) => `${g.role} ${a} on ${g.scope}`),
    ),
    roles: new Set(grants.map((g) => g.role)),
  };
}
