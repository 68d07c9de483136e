import { z } from 'zod';

// zod compiles parsers with `new Function` when it may, and checks whether it may as it builds a schema.
// The page's Content-Security-Policy forbids eval, and that check would log a CSP violation: parse
// without it. Imported first by main.tsx, before any module builds a schema.
z.config({ jitless: true });
