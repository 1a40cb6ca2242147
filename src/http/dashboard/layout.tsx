import type { Child } from 'hono/jsx';
import type { Freshness } from '../../core/site-reports.js';

/** Seconds between reloads of the pages that show live state: a meta refresh works without JavaScript. */
export const REFRESH_SECONDS = 10;

/**
 * No external assets: the dashboard works offline, on Workers and behind a strict CSP. Every freshness is told by its
 * text as well as its colour (colour-blind operators, screenshots in black and white).
 */
const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2327;background:#f6f7f7}
header{background:#1d2327;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header form{margin-left:auto}
main{padding:1rem}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;background:#fff;margin-bottom:1rem}
th,td{border:1px solid #dcdcde;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f1}code,.mono{font-family:ui-monospace,monospace;font-size:12px}h1 code{font-size:1.2rem}
.sites{display:flex;flex-wrap:wrap;gap:.8rem;margin-bottom:1rem}
.site{background:#fff;border:1px solid #dcdcde;padding:.5rem .8rem;min-width:14rem}
.fresh{display:inline-block;padding:0 .4rem;border-radius:3px;font-weight:600;color:#fff}
.f-up-to-date{background:#008a20}.f-syncing{background:#2271b1}.f-behind{background:#b26200}
.f-failed{background:#d63638}.f-unknown{background:#787c82}
.err{color:#b32d2e}.muted{color:#646970}.notice{background:#fff;border-left:4px solid #2271b1;padding:.5rem .8rem}
.notice.bad{border-color:#d63638}form.inline{display:inline;margin:0}
`;

export function Page(props: {
  readonly title: string;
  readonly refresh?: boolean;
  /** Show the sign-out button (the viewer came with the dashboard cookie). */
  readonly signedIn?: boolean;
  readonly children?: Child;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {props.refresh ? <meta http-equiv="refresh" content={String(REFRESH_SECONDS)} /> : null}
        <title>{props.title} - pxecache</title>
        <style>{STYLE}</style>
      </head>
      <body>
        <header>
          <a href="/">pxecache</a>
          <span class="muted">{props.title}</span>
          {props.signedIn ? (
            <form method="post" action="/dashboard/logout">
              <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}

export function FreshnessBadge(props: { readonly freshness: Freshness }) {
  return <span class={`fresh f-${props.freshness}`}>{props.freshness.replaceAll('-', ' ')}</span>;
}

/** A page that says what went wrong (a refused action, a bad form) and where to go back. */
export function Problem(props: { readonly title: string; readonly message: string; readonly back?: string }) {
  return (
    <Page title={props.title}>
      <h1>{props.title}</h1>
      <p class="notice bad">{props.message}</p>
      <p>
        <a href={props.back ?? '/'}>Back</a>
      </p>
    </Page>
  );
}
