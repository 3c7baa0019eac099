export { CredentialHolder, type Credentials, type CredentialsListener } from './credential-holder.js';
