/** Which service a provider speaks to (AI_PROVIDER). */
export const PROVIDER_KINDS = [
  'offline',
  'openai-compatible',
  'openai',
  'azure-openai',
  'anthropic',
  'google',
] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];
