/** The release version, in a module of its own so that `otp-shield --version` loads nothing else. */
export const VERSION = '0.1.0';
