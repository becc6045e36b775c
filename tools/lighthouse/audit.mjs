// Lighthouse 12.2.3 on a list of pages, in the system's Chromium (never a downloaded one).
//
// Reads a JSON job from stdin: {"chrome": PATH, "pages": [{"name", "url", "submit"}],
// "form_factors": ["mobile", "desktop"], "categories": [...] (optional, default all)}.
// Pages answered with 4xx on purpose (the form with errors, a 404) are audited too:
// Lighthouse's own SEO audit then says what it thinks of the status. A page with "submit" is opened first and its
// form's submit button pressed: the navigation that follows (a POST answered with the
// form and its errors) is what Lighthouse measures. Writes one JSON line per audit.
import puppeteer from 'puppeteer-core';
import {startFlow, desktopConfig} from 'lighthouse';

const job = JSON.parse(await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(data));
}));

const browser = await puppeteer.launch({
  executablePath: job.chrome,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--no-first-run'],
});

for (const formFactor of job.form_factors) {
  for (const target of job.pages) {
    const page = await browser.newPage();
    const config = formFactor === 'desktop' ? desktopConfig : undefined;
    const flags = {formFactor, ignoreStatusCode: true};
    if (job.categories) flags.onlyCategories = job.categories;
    const flow = await startFlow(page, {config, flags, name: target.name});
    let row = {name: target.name, url: target.url, form_factor: formFactor};
    try {
      if (target.submit) {
        await page.goto(target.url, {waitUntil: 'load'});
        await flow.navigate(async () => {
          await page.click(target.submit);
        }, {name: target.name});
      } else {
        await flow.navigate(target.url);
      }
      const lhr = (await flow.createFlowResult()).steps.at(-1).lhr;
      const scores = Object.fromEntries(
        Object.entries(lhr.categories).map(([id, c]) => [id, c.score]));
      const failed = Object.values(lhr.audits)
        .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode !== 'informative'
                && a.scoreDisplayMode !== 'manual' && a.scoreDisplayMode !== 'notApplicable')
        .map((a) => a.id);
      const errored = Object.values(lhr.audits)
        .filter((a) => a.scoreDisplayMode === 'error')
        .map((a) => `${a.id}: ${a.errorMessage}`);
      const network = lhr.audits['network-requests']?.details?.items ?? [];
      const consoleErrors = (lhr.audits['errors-in-console']?.details?.items ?? [])
        .map((item) => `${item.source}: ${item.description} ${item.sourceLocation?.url ?? ''}`);
      row = {
        ...row, scores, failed, errored, console_errors: consoleErrors,
        requests: network.length,
        bytes: network.reduce((sum, r) => sum + (r.transferSize || 0), 0),
        runtime_error: lhr.runtimeError?.code ?? null,
      };
    } catch (err) {
      row.error = String(err && err.message || err);
    }
    process.stdout.write(JSON.stringify(row) + '\n');
    await page.close();
  }
}
await browser.close();
