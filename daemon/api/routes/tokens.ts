import { z } from 'zod';

import { parseDuration } from '../../config/duration.ts';
import { BatchdError } from '../../errors.ts';
import { tokenCreatedSchema, tokenCreateSchema, tokenInfoSchema } from '../../protocol/auth.ts';
import { okSchema } from '../../protocol/common.ts';
import type { Router } from '../route.ts';

export function registerTokenRoutes(router: Router): void {
  const { ctx } = router;
  const { users, settings } = ctx;

  router.add(
    {
      method: 'post',
      path: '/token',
      summary: 'Create an expiring bearer token for oneself (shown once; the daemon keeps its hash)',
      tag: 'tokens',
      access: {
        kind: 'user',
        note: 'for oneself, authenticated by password or proxy (a token cannot make tokens, so a stolen one dies when it expires)',
      },
      body: tokenCreateSchema,
      responses: {
        201: { description: 'The token', schema: tokenCreatedSchema },
        409: { description: 'Token authentication is off' },
        422: { description: 'Invalid ttl' },
      },
    },
    async ({ c, body, principal }) => {
      if (settings.auth === 'disable' || !settings.auth.token) {
        throw new BatchdError(
          'CONFLICT',
          'Token authentication is not enabled (manager.auth.token in batchd.yaml)',
        );
      }
      if (principal.via === 'token')
        throw new BatchdError('FORBIDDEN', 'A token cannot create tokens; authenticate with your password');
      const ttl = body.ttl === undefined ? settings.token_ttl : parseDuration(body.ttl);
      if (ttl === undefined || ttl <= 0 || ttl > settings.max_token_ttl) {
        const problems = [
          {
            field: 'ttl',
            message: `Expected a duration up to ${settings.max_token_ttl / 1000} s (manager.max_token_ttl), such as 3600 or "8h"`,
          },
        ];
        throw new BatchdError(
          'ENTITY_INVALID',
          `Invalid ttl: ${problems[0]?.message}`,
          { field: 'ttl' },
          { problems },
        );
      }
      const { info, secret } = await users.createToken(principal.name, ttl, body.name);
      return c.json(
        {
          id: info.id,
          token: secret,
          name: info.name,
          user_name: info.user_name,
          expires_at: info.expires_at,
        },
        201,
      );
    },
  );

  router.add(
    {
      method: 'get',
      path: '/token',
      summary: "The caller's live tokens (a SuperUser sees everyone's); never the secrets",
      tag: 'tokens',
      access: { kind: 'user', note: "shows one's own tokens" },
      responses: { 200: { description: 'Tokens', schema: z.array(tokenInfoSchema) } },
    },
    ({ c, principal }) => c.json(users.tokens(principal.superuser ? undefined : principal.name)),
  );

  router.add(
    {
      method: 'delete',
      path: '/token/:id',
      summary: "Revoke a token (one's own; a SuperUser any)",
      tag: 'tokens',
      access: { kind: 'user', note: "one's own tokens" },
      params: z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'Expected a token id (12 hex digits)') }),
      responses: {
        200: { description: 'Revoked', schema: okSchema },
        404: { description: 'No such token of the caller' },
      },
    },
    async ({ c, params, principal }) => {
      const token = users.token(params.id);
      // Someone else's token is "not found": its existence is not the caller's business.
      if (token === undefined || (!principal.superuser && token.user_name !== principal.name)) {
        throw new BatchdError('NOT_FOUND', `No token ${params.id}`, { token: params.id });
      }
      await users.revokeToken(params.id);
      return c.json({ ok: true as const });
    },
  );
}
