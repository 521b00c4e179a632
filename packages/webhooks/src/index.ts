export { SIGNATURE_HEADER, signWebhook, type VerifyResult, verifyWebhook } from "./signature.ts";
