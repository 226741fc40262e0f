/** The parts of an ARM resource id the checks and gates need (the policy has validated its shape). */
export interface ResourceIdParts {
  subscriptionId: string;
  resourceGroup: string;
  /** `Microsoft.DocumentDB` */
  provider: string;
  /** `Microsoft.DocumentDB/databaseAccounts` (types of the whole chain, `/`-joined). */
  namespace: string;
  /** The last name of the chain. */
  name: string;
}

/** Reads `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/...]`; throws on anything else. */
export function parseResourceId(resourceId: string): ResourceIdParts {
  const parts = resourceId.split('/');
  const [empty, subs, subscriptionId, groups, resourceGroup, providers, provider, ...chain] = parts;
  if (
    empty !== '' ||
    subs?.toLowerCase() !== 'subscriptions' ||
    !subscriptionId ||
    groups?.toLowerCase() !== 'resourcegroups' ||
    !resourceGroup ||
    providers?.toLowerCase() !== 'providers' ||
    !provider ||
    chain.length < 2 ||
    chain.length % 2 !== 0
  ) {
    throw new TypeError(`not an ARM resource id: ${resourceId}`);
  }
  const types = chain.filter((_, i) => i % 2 === 0);
  return {
    subscriptionId,
    resourceGroup,
    provider,
    namespace: `${provider}/${types.join('/')}`,
    name: chain[chain.length - 1]!,
  };
}
