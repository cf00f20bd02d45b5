import { findTool, makePki, startMosquitto, type Identity } from './broker.ts';
import { createLink } from '../../devices/link.ts';
import { io, mqtt5 } from 'aws-iot-device-sdk-v2';
const ids: Identity[] = [{ name: 't1', domain: 'd1' }, { name: 't2', domain: 'd2' }, { name: 'backend', privileged: true }];
const pki = await makePki((await findTool('openssl'))!, ids, 't1');
const b = await startMosquitto((await findTool('mosquitto'))!, pki, ids);
const mk = (n: string) => { const c = pki.clients.get(n)!; return createLink({ kind: 'iot-core', endpoint: '127.0.0.1', thing: n, certPath: c.certPath, keyPath: c.keyPath, port: b.port, caPath: pki.caPath }); };
const t1 = mk('t1'), be = mk('backend');
await t1.connect(); await be.connect();
console.log('connected');
try { await t1.publish('oc/d2/t2/in/offer', { x: 1 }, 1); console.log('pub outside ok?'); } catch (e) { console.log('pub outside', e); }
try { await t1.publish('oc/d1/t1/out/request', { x: 1 }, 1); console.log('pub inside ok'); } catch (e) { console.log('pub inside', e); }
const rogue = createLink({ kind: 'iot-core', endpoint: '127.0.0.1', thing: 't1x', certPath: pki.rogue.certPath, keyPath: pki.rogue.keyPath, port: b.port, caPath: pki.caPath });
try { await rogue.connect(); console.log('rogue connected?!'); } catch (e) { console.log('rogue', e); }
await rogue.close(); await rogue.close();
const never = mk('t2'); await never.close();
const tls = new io.TlsContextOptions(); tls.override_default_trust_store_from_path(undefined, pki.caPath);
const nc = new mqtt5.Mqtt5Client({ hostName: '127.0.0.1', port: b.port, tlsCtx: new io.ClientTlsContext(tls), connectProperties: { clientId: 'nocert', keepAliveIntervalSeconds: 30 } });
const r = await new Promise(res => { nc.once('connectionSuccess', () => res('ok')); nc.once('connectionFailure', (e) => res(e.error.toString())); nc.start(); });
console.log('nocert', r);
await new Promise<void>(res => { nc.once('stopped', () => res()); nc.stop(); }); nc.close();
console.log("closing t1"); await t1.close(); console.log("closing be"); await be.close(); console.log("closed");
console.log(b.log());
await b.stop(); await pki.dispose(); console.log("all done", (process as any)._getActiveHandles().map((h: any) => h.constructor.name));
