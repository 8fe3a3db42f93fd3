import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AppConfig } from '../../config/app.config';
import { BEARER_SCHEME, PSK_SCHEME } from '../auth/auth.decorator';
import { patchOpenApi } from './openapi.patch';

export const API_TITLE = 'Nx1 AI API';
export const API_VERSION = '0.10.2';
const API_DESCRIPTION =
  '\nAI API for Nx1 Data Platform Management and Automated Data Tasks.\n\n' +
  'Authentication is required via PSK in Authorization header.\n\n' +
  'Default PSK is | [ask a friend] |\n';

/** Keycloak URLs for Swagger's OAuth flow; a local Keycloak's when none is configured. */
function oauthUrls(config: AppConfig): { authorizationUrl: string; tokenUrl: string } {
  const keycloak = config.auth.keycloak;
  if (keycloak) return { authorizationUrl: keycloak.authorizationUrl, tokenUrl: keycloak.tokenUrl };
  const issuer = 'http://localhost:8080/realms/rapid';
  return {
    authorizationUrl: `${issuer}/protocol/openid-connect/auth`,
    tokenUrl: `${issuer}/protocol/openid-connect/token`,
  };
}

export function buildOpenApiDocument(app: INestApplication, config: AppConfig): OpenAPIObject {
  const options = new DocumentBuilder()
    .setTitle(API_TITLE)
    .setDescription(API_DESCRIPTION)
    .setVersion(API_VERSION)
    .setOpenAPIVersion('3.1.0')
    // Scheme names and the header name are the contract's (seed 000/003).
    .addApiKey({ type: 'apiKey', in: 'header', name: 'Authorization-PSK' }, PSK_SCHEME)
    .addOAuth2({ type: 'oauth2', flows: { authorizationCode: { ...oauthUrls(config), scopes: {} } } }, BEARER_SCHEME)
    .build();
  const document = SwaggerModule.createDocument(app, options, { autoTagControllers: false });
  return patchOpenApi(document);
}

/**
 * Serves the document at /openapi.json and Swagger UI at /docs, FastAPI's
 * places. The document is built on the first request that needs it (then
 * kept), not at start: that saves start-up about 0.2 s. It is built from the
 * same routes and metadata either way, so it is the same document.
 */
export function setupSwagger(app: INestApplication, config: AppConfig): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app, config), {
    useGlobalPrefix: false,
    jsonDocumentUrl: 'openapi.json',
    yamlDocumentUrl: 'openapi.yaml',
    customSiteTitle: `${API_TITLE} - Swagger UI`,
    swaggerOptions: {
      persistAuthorization: true,
      // No oauth2RedirectUrl: Swagger UI derives it from the page's own origin (/docs/oauth2-redirect.html).
      initOAuth: {
        clientId: config.auth.keycloak?.clientId ?? undefined,
        usePkceWithAuthorizationCodeGrant: true,
      },
    },
  });
}
