import { createHmac } from 'node:crypto';
import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import { describe, expect, it } from 'vitest';
import { serviceBusSasToken } from '../../../../src/lib/azure/serviceBusKeys';
import { sasStringToSign } from '../../../../src/local/sandbox/arm/serviceBus';
import { fixture } from '../../../support/events';
import { ARM, armSandbox, failureOf, RG, raw, SUB } from './support';

const NS = 'sb-sandbox-keys';
const NS_PATH = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ServiceBus/namespaces/${NS}`;

function sandbox() {
  return armSandbox({
    arm: {
      serviceBusNamespaces: [
        {
          name: NS,
          authorizationRules: [
            { name: 'RootManageSharedAccessKey', rights: ['Listen', 'Send', 'Manage'] },
            { name: 'app-send', rights: ['Send'] },
          ],
          queues: [{ name: 'orders', authorizationRules: [{ name: 'orders-listen', rights: ['Listen'] }] }],
          topics: [
            {
              name: 'events',
              authorizationRules: [{ name: 'events-manage', rights: ['Manage', 'Send', 'Listen'] }],
            },
          ],
        },
      ],
    },
  });
}

function client(box: ReturnType<typeof sandbox>) {
  return new ServiceBusManagementClient(box.credential, SUB, { httpClient: box.httpClient });
}

describe('sandbox Service Bus authorization rules, through the real @azure/arm-servicebus client', () => {
  it('lists a namespace rule keys in the published shape: base64 of 32 bytes, connection strings holding them', async () => {
    // Prepare
    const box = sandbox();
    const published = fixture<{ responses: { 200: { body: Record<string, string> } } }>(
      'rest/servicebus/SBNameSpaceAuthorizationRuleListKey.json',
    );

    // Act
    const keys = await client(box).namespaces.listKeys(RG, NS, 'RootManageSharedAccessKey');
    const wire = await raw(
      box,
      'POST',
      `${ARM}${NS_PATH}/AuthorizationRules/RootManageSharedAccessKey/listKeys?api-version=2024-01-01`,
    );

    // Assess
    expect(Object.keys(wire.json as object).sort()).toEqual(
      Object.keys(published.responses[200].body).sort(),
    );
    expect(Buffer.from(keys.primaryKey!, 'base64')).toHaveLength(32);
    expect(keys.keyName).toBe('RootManageSharedAccessKey');
    expect(keys.primaryConnectionString).toBe(
      `Endpoint=sb://${NS}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${keys.primaryKey}`,
    );
  });

  it('lists a queue rule with EntityPath in its connection strings, as the published queue example', async () => {
    // Prepare
    const box = sandbox();

    // Act
    const keys = await client(box).queues.listKeys(RG, NS, 'orders', 'orders-listen');

    // Assess
    expect(keys.secondaryConnectionString).toBe(
      `Endpoint=sb://${NS}.servicebus.windows.net/;SharedAccessKeyName=orders-listen;SharedAccessKey=${keys.secondaryKey};EntityPath=orders`,
    );
  });

  it('regenerates the named key only, or sets the value given in key', async () => {
    // Prepare
    const box = sandbox();
    const before = await client(box).topics.listKeys(RG, NS, 'events', 'events-manage');
    const chosen = Buffer.alloc(32, 7).toString('base64');

    // Act
    const regenerated = await client(box).topics.regenerateKeys(RG, NS, 'events', 'events-manage', {
      keyType: 'SecondaryKey',
    });
    const set = await client(box).topics.regenerateKeys(RG, NS, 'events', 'events-manage', {
      keyType: 'PrimaryKey',
      key: chosen,
    });

    // Assess
    expect(regenerated.primaryKey).toBe(before.primaryKey);
    expect(regenerated.secondaryKey).not.toBe(before.secondaryKey);
    expect(set.primaryKey).toBe(chosen);
    expect(set.secondaryKey).toBe(regenerated.secondaryKey);
  });

  it('refuses an unknown keyType with 400 and an unknown rule or queue with 404, changing nothing', async () => {
    // Prepare
    const box = sandbox();
    const before = await client(box).namespaces.listKeys(RG, NS, 'app-send');

    // Act
    const badType = await raw(
      box,
      'POST',
      `${ARM}${NS_PATH}/authorizationRules/app-send/regenerateKeys?api-version=2024-01-01`,
      {
        body: { keyType: 'TertiaryKey' },
      },
    );
    const noRule = await failureOf(client(box).namespaces.listKeys(RG, NS, 'nobody'));
    const noQueue = await failureOf(client(box).queues.listKeys(RG, NS, 'missing', 'orders-listen'));

    // Assess
    expect(badType.status).toBe(400);
    expect(noRule.statusCode).toBe(404);
    expect(noQueue.statusCode).toBe(404);
    expect(await client(box).namespaces.listKeys(RG, NS, 'app-send')).toEqual(before);
  });
});

describe('sandbox Service Bus HTTPS endpoint, SAS authorization', () => {
  it('signs and checks SAS as two published independent implementations do (the string to sign is sr as sent)', () => {
    // Prepare: vectors of CPAN Net::Azure::Authorization::SAS (lower-case percent-encoding, as .NET writes it)
    // and of parse-server-azure-push's NHSasToken test (JavaScript encodeURIComponent).
    const perl = {
      key: 'AexamplekeyAEXAMPLEKEYAexamplekeyAEXAMPLEKEY=',
      sr: 'https%3a%2f%2fmysvc.servicebus.windows.net%2fmyentity%2fmessages',
      se: '1476065410',
    };

    // Act
    const perlSig = createHmac('sha256', perl.key)
      .update(sasStringToSign(perl.sr, perl.se), 'utf8')
      .digest('base64');
    const jsToken = serviceBusSasToken('endpoint/hub', 'keyName', 'keyVal', 1);

    // Assess
    expect(perlSig).toBe('nQDGh0YxA8O3SFO7SyrmnTK6BnP/33KShAbTXFjmYV0=');
    expect(jsToken).toBe(
      'SharedAccessSignature sr=endpoint%2Fhub&sig=EGsjmHg%2FOKM5bYk5pU7ZpN5ExQRuT3VCwXuCftrmUZw%3D&se=1&skn=keyName',
    );
  });

  it('lets a Manage rule read, tells a Send rule its claims are missing, refuses a regenerated key or a foreign audience', async () => {
    // Prepare
    const box = sandbox();
    const root = await client(box).namespaces.listKeys(RG, NS, 'RootManageSharedAccessKey');
    const send = await client(box).namespaces.listKeys(RG, NS, 'app-send');
    const get = (path: string, token: string) =>
      raw(box, 'GET', `https://${NS}.servicebus.windows.net${path}?api-version=2021-05`, {
        authorization: token,
      });
    const soon = Math.floor(Date.now() / 1000) + 300;
    const base = `https://${NS}.servicebus.windows.net/`;

    // Act
    const asRoot = await get(
      '/orders',
      serviceBusSasToken(base, 'RootManageSharedAccessKey', root.primaryKey!, soon),
    );
    const asSend = await get('/orders', serviceBusSasToken(base, 'app-send', send.secondaryKey!, soon));
    const otherAudience = await get(
      '/orders',
      serviceBusSasToken(`${base}events`, 'RootManageSharedAccessKey', root.primaryKey!, soon),
    );
    const expired = await get(
      '/orders',
      serviceBusSasToken(base, 'RootManageSharedAccessKey', root.primaryKey!, soon - 600),
    );
    await client(box).namespaces.regenerateKeys(RG, NS, 'app-send', { keyType: 'SecondaryKey' });
    const stale = await get('/orders', serviceBusSasToken(base, 'app-send', send.secondaryKey!, soon));

    // Assess
    expect(asRoot.status).toBe(200);
    expect(asRoot.text).toContain('<title type="text">orders</title>');
    expect(asSend.status).toBe(401);
    expect(asSend.text).toContain(
      '<Detail>Manage,EntityRead claims required for this operation. TrackingId:',
    );
    expect(otherAudience.text).toContain('<Detail>InvalidAudience: ');
    expect(expired.text).toContain('<Detail>ExpiredToken: ');
    expect(stale.status).toBe(401);
    expect(stale.text).toContain('<Detail>InvalidSignature: The token has an invalid signature. TrackingId:');
  });

  it('answers the service XML error body, and refuses a missing token', async () => {
    // Prepare
    const box = sandbox();

    // Act
    const anonymous = await raw(
      box,
      'GET',
      `https://${NS}.servicebus.windows.net/orders?api-version=2021-05`,
      { scope: null },
    );

    // Assess
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).toMatch(
      /^<Error><Code>401<\/Code><Detail>MissingToken: The authorization header was not found\. TrackingId:[0-9a-f-]+_G\d+, SystemTracker:sb-sandbox-keys\.servicebus\.windows\.net:orders, Timestamp:[^<]+<\/Detail><\/Error>$/,
    );
  });
});
