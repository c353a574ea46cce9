import { BatchdError, type ProviderContext } from '../../daemon/plugins/api.ts';

/** A provider failure for `host`, in batchd's words. */
export function failure(
  ctx: ProviderContext,
  host: string | undefined,
  message: string,
  context: Record<string, unknown> = {},
): BatchdError {
  const where = `EC2 (controller ${ctx.name})${host === undefined ? '' : `, host ${host}`}`;
  return new BatchdError('PROVIDER_FAILED', `${where}: ${message}`, {
    host,
    controller: ctx.name,
    ...context,
  });
}

/**
 * A call AWS refused or that did not reach it: the call's name and AWS's error code and message.
 * The SDK's error is not kept as the cause: only what is shown here leaves the plugin.
 */
export function refused(
  ctx: ProviderContext,
  call: string,
  error: unknown,
  host: string | undefined,
): BatchdError {
  if (error instanceof BatchdError) return error;
  const fromAws = isServiceError(error);
  const detail = fromAws
    ? `${error.name}: ${error.message}`
    : error instanceof Error
      ? error.message
      : String(error);
  return failure(ctx, host, `${call} failed: ${detail}`, {
    call,
    ...(fromAws ? { awsCode: error.name } : {}),
  });
}

/** The SDK's ServiceException: an answer from AWS (`name` is AWS's error code). */
function isServiceError(error: unknown): error is Error & { $metadata: object } {
  return error instanceof Error && typeof (error as { $metadata?: unknown }).$metadata === 'object';
}
