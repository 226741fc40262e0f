export {
  type AlertDeliveryRecord,
  type AlertDeliveryTarget,
  type AlertRuleView,
  RESOLVE_AFTER_EVALUATIONS,
  type SandboxAlerting,
} from './alerting';
/** The sandbox: in-process emulation of the Azure services stampkeeper calls, and the world around it. */
export type { WebhookCallbackRecord } from './arm/consumerEndpoints';
export type {
  ConsumerDowntime,
  ConsumerView,
  DowntimeInterval,
  DowntimeReport,
  RollRecord,
} from './arm/consumers';
export { ARM_RESOURCE } from './arm/emulator';
export type { ArmEstate } from './arm/world';
export { createSandboxClock, MAX_MOVE_MS, type SandboxClock, type WorldTicker } from './clock';
export {
  createSandboxCredential,
  type SandboxCredential,
  type SandboxTokenInfo,
} from './credential';
export {
  type DeliveryAttempt,
  type DeliveryAttemptOptions,
  type EventDeliveryTarget,
  type RaisedEvent,
  type SubscriptionValidation,
  toCloudEvent,
  type UndeliveredEvent,
} from './eventgrid/delivery';
export { EVENT_GRID_HOST_SUFFIX, type PublishedEvent, type PublishedSchema } from './eventgrid/sink';
export { azureError, type SandboxReply, type SandboxRequest } from './http';
export { type AdvanceRequest, handleInspectionHttp, type ParsedAdvance, parseAdvance } from './inspect';
export { KEY_VAULT_HOST_SUFFIX, KEY_VAULT_RESOURCE, type KeyVaultRequestRecord } from './keyvault/http';
export { NEAR_EXPIRY_MS, type SecretAttributesInput } from './keyvault/store';
export {
  type Dimensions,
  LOGS_AUDIENCE,
  LOGS_ENDPOINT,
  type LogsQueryContext,
  type LogsQueryHandler,
  type LogsRequestRecord,
  METRICS_AUDIENCE,
  type MetricSource,
  type MetricSourceValue,
  type MetricsRequestRecord,
  type MonitorSandbox,
  type MonitorScenario,
  type ScenarioLogsResult,
  type ScenarioMetricDefinition,
  type SeriesDefinition,
  type WorkspaceState,
} from './monitor';
export {
  createRoutingHttpClient,
  isLoopback,
  type RoutedRequest,
  type ServiceEmulator,
  unknownHost,
} from './router';
export {
  type AdvanceResult,
  type CreateSandboxOptions,
  createSandbox,
  type Sandbox,
  type SandboxEstate,
  type SandboxRequestRecord,
  seededRandom,
} from './sandbox';
export {
  CERTIFICATE_CONTENT_TYPES,
  DEFAULT_DELIVERY_TIMEOUT_MS,
  DEFAULT_RESOURCE_GROUP,
  DEFAULT_SUBSCRIPTION_ID,
  DEFAULT_TENANT_ID,
  EVENT_GRID_SCHEMAS,
  type EventGridDeliverySchema,
  KEY_VAULT_SECRET_EVENT_TYPES,
  loadScenario,
  parseScenario,
  type ResolvedScenario,
  resolveScenario,
  type Scenario,
  type ScenarioEventSubscription,
  type ScenarioSecret,
  type ScenarioVault,
} from './scenario';
export {
  type SandboxServiceBus,
  type ServiceBusInspector,
  type StartSandboxServiceBusOptions,
  startSandboxServiceBus,
} from './servicebus';
export { type WebhookRecord, WebhookSink } from './webhookSink';
