/**
 * The optional layers installed on top of the verification core, in order. Each installer may add
 * service hooks (`ctx.hooks`), HTTP route plugins (`ctx.extraRoutes`) and background work; none of them
 * changes the core's code. Adding a layer = one line here.
 */
import type { AppContext } from './context.ts';
import { installAuditLog } from '../http/routes/admin-events.ts';
import { installPumpingDefense } from './pumping.ts';
import { installMonitoring } from '../monitoring/install.ts';

export type LayerInstaller = (ctx: AppContext) => void | Promise<void>;

export const layers: LayerInstaller[] = [];

layers.push(installAuditLog);
layers.push(installMonitoring);
layers.push(installPumpingDefense);
