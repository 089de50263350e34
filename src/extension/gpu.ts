// "AttnScope: Install GPU Support": downloads onnxruntime's CUDA provider libraries (pinned in
// src/engine/runtime/cudaProvider.ts) into the extension's global storage, with progress and
// Cancel, and links them next to onnxruntime-node's binding, where onnxruntime looks for them.
// The link is renewed at every activation, since an extension update brings a fresh node_modules.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError, oneLine } from '../engine/errors';
import { CUDA_PROVIDER, cudaReadiness, installCudaProvider, installedProvider, linkProvider, ortBinaryDir, progressText, registryUrl, tarballUrl } from '../engine/runtime/cudaProvider';
import { readSettings } from './settings';

export const INSTALL_GPU_COMMAND = 'attnscope.installGpuSupport';

/** Where the extension keeps the provider: <globalStorage>/cuda/<onnxruntime version>. */
export function gpuStore(ctx: vscode.ExtensionContext): string {
  return path.join(ctx.globalStorageUri.fsPath, 'cuda', CUDA_PROVIDER.ortVersion);
}

/** Links an installed provider into onnxruntime's folder when it is not there (after an update, say). */
export function linkInstalledGpuSupport(ctx: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  const store = gpuStore(ctx);
  const dir = ortBinaryDir();
  if (!dir || !installedProvider(store)) return;
  try {
    const r = linkProvider(store, dir);
    if (r.linked.length) log.info(`GPU support: ${r.copied ? 'copied' : 'linked'} ${r.linked.join(', ')} from ${store} into ${dir}`);
  } catch (e) {
    log.warn(`GPU support: ${oneLine(e)}`);
  }
}

/**
 * Links an installed provider now and registers the install command.
 * `openModelDevice` says the device of the model open now, if any (it keeps its device until reopened).
 */
export function registerGpuSupport(ctx: vscode.ExtensionContext, log: vscode.LogOutputChannel, reportError: (e: unknown) => void, openModelDevice: () => string | undefined): void {
  linkInstalledGpuSupport(ctx, log);
  ctx.subscriptions.push(vscode.commands.registerCommand(INSTALL_GPU_COMMAND, () => installGpuSupport(ctx, log, openModelDevice).catch(reportError)));
}

async function installGpuSupport(ctx: vscode.ExtensionContext, log: vscode.LogOutputChannel, openModelDevice: () => string | undefined): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new EngineError('RUNTIME', `GPU support is available for Linux x64 only (this is ${process.platform} ${process.arch})`);
  }
  const store = gpuStore(ctx);
  const url = tarballUrl(registryUrl());
  const needs = `CUDA ${CUDA_PROVIDER.cuda} and cuDNN ${CUDA_PROVIDER.cudnn}`;
  log.info(`GPU support: installing onnxruntime ${CUDA_PROVIDER.ortVersion}'s CUDA provider (${needs}) from ${url} into ${store}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `AttnScope: Installing GPU support (onnxruntime ${CUDA_PROVIDER.ortVersion} CUDA provider, ${(CUDA_PROVIDER.size / 1e6).toFixed(0)} MB)`, cancellable: true },
    async (progress, token) => {
      const ac = new AbortController();
      const sub = token.onCancellationRequested(() => ac.abort());
      let pct = 0;
      let shownMb = -1;
      try {
        return await installCudaProvider({
          storeDir: store,
          signal: ac.signal,
          onProgress: (got, total) => {
            const now = total ? Math.min(100, Math.floor((100 * got) / total)) : 0;
            const mb = Math.floor(got / 1e6);
            if (now === pct && mb === shownMb) return;
            progress.report({ increment: now - pct, message: progressText(got, total) });
            pct = now;
            shownMb = mb;
          },
        });
      } finally {
        sub.dispose();
      }
    },
  );
  log.info(`GPU support: ${result.downloaded ? 'verified and installed' : 'already installed'} in ${result.dir}`);
  const ready = cudaReadiness({ stores: [store], link: true });
  if (ready.linkedFrom) log.info(`GPU support: linked the provider libraries into ${ortBinaryDir()}`);
  if (ready.blocker) {
    log.warn(`GPU support: ${ready.reason}`);
    void vscode.window.showWarningMessage(`AttnScope: GPU support is installed, but ${ready.reason}. Models run on the CPU until then.`);
    return;
  }
  const device = readSettings().device;
  const open = openModelDevice();
  const next =
    device === 'cpu'
      ? `Set attnscope.device to "auto" to use it (it is "cpu" now).`
      : `The next model opened uses CUDA${open === 'cpu' ? '; the model open now stays on the CPU until it is reopened (Reload Window reopens it)' : ''}.`;
  const pick = await vscode.window.showInformationMessage(`AttnScope: GPU support installed (${needs} libraries found). ${next}`, ...(open === 'cpu' && device !== 'cpu' ? ['Reload Window'] : []));
  if (pick === 'Reload Window') await vscode.commands.executeCommand('workbench.action.reloadWindow');
}
