/* DashFleet i18n: every visible string of the pages, in English, French, Spanish and Russian.
   Elements carry data-i18n (text), data-i18n-placeholder or data-i18n-title; scripts call t(key).
   The choice is remembered in localStorage. tests/test_web_i18n.py checks the four tables have
   the same keys and that every key used in the templates and scripts exists. */
"use strict";

const I18N = {
  en: {
    "title.live": "DashFleet · live", "title.history": "DashFleet · history",
    "title.fleet": "DashFleet · fleet", "title.machine": "DashFleet · machine",
    "nav.live": "Live", "nav.history": "History", "nav.fleet": "Fleet", "lang.label": "Language",
    "status.ok": "OK", "status.warn": "Warning", "status.critical": "Critical", "status.expired": "Silent",
    "metric.cpu": "CPU", "metric.ram": "Memory", "metric.disk": "Disk", "metric.uptime": "Uptime",
    "live.heading": "This server's machine", "live.health": "Health", "live.findings": "Findings",
    "live.none": "No problem found.", "live.updated": "updated {time}",
    "history.heading": "History of this server's machine", "history.last": "Last 20 samples",
    "history.empty": "No sample stored yet.", "history.count": "{n} samples",
    "col.time": "Time", "col.cpu": "CPU %", "col.ram": "Memory %", "col.disk": "Disk %",
    "col.score": "Score", "col.status": "Status", "col.machine": "Machine", "col.reason": "Top reason",
    "col.seen": "Last seen",
    "fleet.heading": "Fleet", "fleet.filter": "Filter", "fleet.filter.placeholder": "Name, id, OS or reason",
    "fleet.status.all": "All", "fleet.empty": "No machine has reported yet.",
    "fleet.count": "{shown} of {total} machines", "fleet.maintenance": "maintenance until {time}",
    "fleet.maintenance.all": "Whole fleet in maintenance until {time}",
    "machine.back": "← Back to the fleet", "machine.facts": "Facts", "machine.findings": "Findings",
    "machine.charts": "Charts", "machine.range": "Range", "machine.nodata": "No data in this range.",
    "machine.events": "Events", "machine.noevents": "No event recorded.",
    "machine.nofacts": "No fact reported.", "machine.seen": "last report {time}",
    "machine.id": "Machine id", "machine.os": "Operating system", "machine.agent": "Agent version",
    "machine.first": "First seen", "machine.dropped": "Reports dropped by the agent",
    "range.1h": "Last hour", "range.6h": "Last 6 hours", "range.24h": "Last 24 hours", "range.7d": "Last 7 days",
    "chart.avg": "{metric} (average)", "chart.max": "{metric} (max)",
    "finding.above": "{metric} at {value}, at or above the {severity} level {threshold}",
    "finding.below": "{metric} at {value}, at or below the {severity} level {threshold}",
    "severity.warn": "warning", "severity.critical": "critical",
    "event.status_changed": "Status changed", "event.silent": "Went silent", "event.back": "Reporting again",
    "event.maintenance_started": "Maintenance started", "event.maintenance_ended": "Maintenance ended",
    "event.seq_conflict": "Sequence conflict", "event.machine_key_reset": "Machine key reset",
    "event.action": "Action",
    "error.fetch": "Cannot reach the server ({error}); retrying.",
    "unit.d": "d", "unit.h": "h", "unit.min": "min", "unit.s": "s",
    "title.login": "DashFleet · log in",
    "login.heading": "Log in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.no_users": "No account exists yet: open the setup link the server printed in its log, or run \"dashfleet user add\".",
    "login.code.heading": "Second factor",
    "login.code.help": "Type the 6 digits your authenticator app shows, or one of your recovery codes.",
    "login.code": "Code",
    "login.code.submit": "Verify",
    "login.enrol.heading": "Set up a second factor",
    "login.enrol.help": "This server requires a second factor for your account. Scan the code with an authenticator app (or type the key), then type the 6 digits it shows.",
    "login.enrol.key": "Key",
    "login.codes.heading": "Your recovery codes",
    "login.codes.help": "Each code logs you in once without the app. Keep them somewhere safe: they are shown only now.",
    "login.codes.continue": "I have kept them: continue",
    "login.wrong": "Wrong username or password.",
    "login.wrong_code": "That code is not right: type the 6 digits the app shows now, or a recovery code.",
    "login.locked": "Too many failed logins: try again in a few minutes.",
    "login.no_org": "This account belongs to no organisation: ask an admin to add it to one.",
    "setup.heading": "Create the first administrator",
    "setup.help": "This account administers the whole server. Use at least 12 characters for the password.",
    "setup.password2": "Password again",
    "setup.submit": "Create and log in",
    "setup.mismatch": "The two passwords differ: type the same one twice.",
    "setup.gone.heading": "This setup link cannot be used",
    "setup.gone": "It was used already, has expired, or an administrator exists. Log in, or ask the server for a new link with \"dashfleet user setup-link\".",
    "account.org": "Organisation",
    "account.logout": "Log out",
    "operate.maint_start": "Maintenance for 1 hour",
    "operate.maint_end": "End maintenance",
  },
  fr: {
    "title.live": "DashFleet · direct", "title.history": "DashFleet · historique",
    "title.fleet": "DashFleet · parc", "title.machine": "DashFleet · machine",
    "nav.live": "Direct", "nav.history": "Historique", "nav.fleet": "Parc", "lang.label": "Langue",
    "status.ok": "OK", "status.warn": "Alerte", "status.critical": "Critique", "status.expired": "Muette",
    "metric.cpu": "Processeur", "metric.ram": "Mémoire", "metric.disk": "Disque", "metric.uptime": "Temps de fonctionnement",
    "live.heading": "La machine de ce serveur", "live.health": "Santé", "live.findings": "Constats",
    "live.none": "Aucun problème détecté.", "live.updated": "mis à jour {time}",
    "history.heading": "Historique de la machine de ce serveur", "history.last": "20 derniers relevés",
    "history.empty": "Aucun relevé enregistré pour l'instant.", "history.count": "{n} relevés",
    "col.time": "Heure", "col.cpu": "Processeur %", "col.ram": "Mémoire %", "col.disk": "Disque %",
    "col.score": "Score", "col.status": "État", "col.machine": "Machine", "col.reason": "Raison principale",
    "col.seen": "Dernier contact",
    "fleet.heading": "Parc", "fleet.filter": "Filtrer", "fleet.filter.placeholder": "Nom, id, système ou raison",
    "fleet.status.all": "Tous", "fleet.empty": "Aucune machine n'a encore envoyé de rapport.",
    "fleet.count": "{shown} sur {total} machines", "fleet.maintenance": "maintenance jusqu'à {time}",
    "fleet.maintenance.all": "Tout le parc en maintenance jusqu'à {time}",
    "machine.back": "← Retour au parc", "machine.facts": "Informations", "machine.findings": "Constats",
    "machine.charts": "Graphiques", "machine.range": "Période", "machine.nodata": "Aucune donnée sur cette période.",
    "machine.events": "Événements", "machine.noevents": "Aucun événement enregistré.",
    "machine.nofacts": "Aucune information transmise.", "machine.seen": "dernier rapport {time}",
    "machine.id": "Identifiant", "machine.os": "Système d'exploitation", "machine.agent": "Version de l'agent",
    "machine.first": "Vue pour la première fois", "machine.dropped": "Rapports abandonnés par l'agent",
    "range.1h": "Dernière heure", "range.6h": "6 dernières heures", "range.24h": "24 dernières heures",
    "range.7d": "7 derniers jours",
    "chart.avg": "{metric} (moyenne)", "chart.max": "{metric} (max)",
    "finding.above": "{metric} à {value}, au niveau {severity} {threshold} ou au-dessus",
    "finding.below": "{metric} à {value}, au niveau {severity} {threshold} ou en dessous",
    "severity.warn": "d'alerte", "severity.critical": "critique",
    "event.status_changed": "Changement d'état", "event.silent": "Devenue muette", "event.back": "De nouveau joignable",
    "event.maintenance_started": "Début de maintenance", "event.maintenance_ended": "Fin de maintenance",
    "event.seq_conflict": "Conflit de numéro de séquence", "event.machine_key_reset": "Clé de machine réinitialisée",
    "event.action": "Action",
    "error.fetch": "Serveur injoignable ({error}) ; nouvel essai en cours.",
    "unit.d": "j", "unit.h": "h", "unit.min": "min", "unit.s": "s",
    "title.login": "DashFleet · connexion",
    "login.heading": "Connexion",
    "login.username": "Nom d'utilisateur",
    "login.password": "Mot de passe",
    "login.submit": "Se connecter",
    "login.no_users": "Aucun compte n'existe encore : ouvrez le lien d'installation affiché dans le journal du serveur, ou lancez \"dashfleet user add\".",
    "login.code.heading": "Second facteur",
    "login.code.help": "Saisissez les 6 chiffres affichés par votre application d'authentification, ou l'un de vos codes de secours.",
    "login.code": "Code",
    "login.code.submit": "Vérifier",
    "login.enrol.heading": "Configurer un second facteur",
    "login.enrol.help": "Ce serveur exige un second facteur pour votre compte. Scannez le code avec une application d'authentification (ou saisissez la clé), puis tapez les 6 chiffres affichés.",
    "login.enrol.key": "Clé",
    "login.codes.heading": "Vos codes de secours",
    "login.codes.help": "Chaque code permet une connexion sans l'application. Gardez-les en lieu sûr : ils ne sont affichés que maintenant.",
    "login.codes.continue": "Je les ai conservés : continuer",
    "login.wrong": "Nom d'utilisateur ou mot de passe incorrect.",
    "login.wrong_code": "Ce code n'est pas le bon : saisissez les 6 chiffres affichés maintenant par l'application, ou un code de secours.",
    "login.locked": "Trop d'échecs de connexion : réessayez dans quelques minutes.",
    "login.no_org": "Ce compte n'appartient à aucune organisation : demandez à un administrateur de l'y ajouter.",
    "setup.heading": "Créer le premier administrateur",
    "setup.help": "Ce compte administre tout le serveur. Utilisez au moins 12 caractères pour le mot de passe.",
    "setup.password2": "Confirmer le mot de passe",
    "setup.submit": "Créer et se connecter",
    "setup.mismatch": "Les deux mots de passe diffèrent : saisissez deux fois le même.",
    "setup.gone.heading": "Ce lien d'installation n'est plus utilisable",
    "setup.gone": "Il a déjà servi, a expiré, ou un administrateur existe. Connectez-vous, ou demandez un nouveau lien avec \"dashfleet user setup-link\".",
    "account.org": "Organisation",
    "account.logout": "Se déconnecter",
    "operate.maint_start": "Maintenance pendant 1 heure",
    "operate.maint_end": "Terminer la maintenance",
  },
  es: {
    "title.live": "DashFleet · en directo", "title.history": "DashFleet · historial",
    "title.fleet": "DashFleet · flota", "title.machine": "DashFleet · equipo",
    "nav.live": "En directo", "nav.history": "Historial", "nav.fleet": "Flota", "lang.label": "Idioma",
    "status.ok": "OK", "status.warn": "Aviso", "status.critical": "Crítico", "status.expired": "Sin señal",
    "metric.cpu": "CPU", "metric.ram": "Memoria", "metric.disk": "Disco", "metric.uptime": "Tiempo encendido",
    "live.heading": "El equipo de este servidor", "live.health": "Salud", "live.findings": "Hallazgos",
    "live.none": "Ningún problema encontrado.", "live.updated": "actualizado {time}",
    "history.heading": "Historial del equipo de este servidor", "history.last": "Últimas 20 muestras",
    "history.empty": "Todavía no hay muestras guardadas.", "history.count": "{n} muestras",
    "col.time": "Hora", "col.cpu": "CPU %", "col.ram": "Memoria %", "col.disk": "Disco %",
    "col.score": "Puntuación", "col.status": "Estado", "col.machine": "Equipo", "col.reason": "Motivo principal",
    "col.seen": "Último contacto",
    "fleet.heading": "Flota", "fleet.filter": "Filtrar", "fleet.filter.placeholder": "Nombre, id, sistema o motivo",
    "fleet.status.all": "Todos", "fleet.empty": "Ningún equipo ha informado todavía.",
    "fleet.count": "{shown} de {total} equipos", "fleet.maintenance": "mantenimiento hasta {time}",
    "fleet.maintenance.all": "Toda la flota en mantenimiento hasta {time}",
    "machine.back": "← Volver a la flota", "machine.facts": "Datos", "machine.findings": "Hallazgos",
    "machine.charts": "Gráficos", "machine.range": "Periodo", "machine.nodata": "No hay datos en este periodo.",
    "machine.events": "Eventos", "machine.noevents": "Ningún evento registrado.",
    "machine.nofacts": "No se ha enviado ningún dato.", "machine.seen": "último informe {time}",
    "machine.id": "Identificador", "machine.os": "Sistema operativo", "machine.agent": "Versión del agente",
    "machine.first": "Visto por primera vez", "machine.dropped": "Informes descartados por el agente",
    "range.1h": "Última hora", "range.6h": "Últimas 6 horas", "range.24h": "Últimas 24 horas",
    "range.7d": "Últimos 7 días",
    "chart.avg": "{metric} (media)", "chart.max": "{metric} (máx.)",
    "finding.above": "{metric} en {value}, en o por encima del nivel {severity} {threshold}",
    "finding.below": "{metric} en {value}, en o por debajo del nivel {severity} {threshold}",
    "severity.warn": "de aviso", "severity.critical": "crítico",
    "event.status_changed": "Cambio de estado", "event.silent": "Sin señal", "event.back": "Informa de nuevo",
    "event.maintenance_started": "Inicio de mantenimiento", "event.maintenance_ended": "Fin de mantenimiento",
    "event.seq_conflict": "Conflicto de secuencia", "event.machine_key_reset": "Clave de máquina restablecida",
    "event.action": "Acción",
    "error.fetch": "No se puede contactar con el servidor ({error}); reintentando.",
    "unit.d": "d", "unit.h": "h", "unit.min": "min", "unit.s": "s",
    "title.login": "DashFleet · iniciar sesión",
    "login.heading": "Iniciar sesión",
    "login.username": "Usuario",
    "login.password": "Contraseña",
    "login.submit": "Entrar",
    "login.no_users": "Aún no existe ninguna cuenta: abra el enlace de configuración que el servidor escribió en su registro, o ejecute \"dashfleet user add\".",
    "login.code.heading": "Segundo factor",
    "login.code.help": "Escriba los 6 dígitos que muestra su aplicación de autenticación, o uno de sus códigos de recuperación.",
    "login.code": "Código",
    "login.code.submit": "Verificar",
    "login.enrol.heading": "Configurar un segundo factor",
    "login.enrol.help": "Este servidor exige un segundo factor para su cuenta. Escanee el código con una aplicación de autenticación (o escriba la clave) y luego los 6 dígitos que muestra.",
    "login.enrol.key": "Clave",
    "login.codes.heading": "Sus códigos de recuperación",
    "login.codes.help": "Cada código permite entrar una vez sin la aplicación. Guárdelos en un lugar seguro: solo se muestran ahora.",
    "login.codes.continue": "Los he guardado: continuar",
    "login.wrong": "Usuario o contraseña incorrectos.",
    "login.wrong_code": "Ese código no es correcto: escriba los 6 dígitos que muestra ahora la aplicación, o un código de recuperación.",
    "login.locked": "Demasiados intentos fallidos: vuelva a intentarlo en unos minutos.",
    "login.no_org": "Esta cuenta no pertenece a ninguna organización: pida a un administrador que la añada a una.",
    "setup.heading": "Crear el primer administrador",
    "setup.help": "Esta cuenta administra todo el servidor. Use al menos 12 caracteres para la contraseña.",
    "setup.password2": "Repita la contraseña",
    "setup.submit": "Crear y entrar",
    "setup.mismatch": "Las dos contraseñas no coinciden: escriba la misma dos veces.",
    "setup.gone.heading": "Este enlace de configuración no se puede usar",
    "setup.gone": "Ya se usó, ha caducado o ya existe un administrador. Inicie sesión, o pida un enlace nuevo con \"dashfleet user setup-link\".",
    "account.org": "Organización",
    "account.logout": "Cerrar sesión",
    "operate.maint_start": "Mantenimiento durante 1 hora",
    "operate.maint_end": "Terminar el mantenimiento",
  },
  ru: {
    "title.live": "DashFleet · сейчас", "title.history": "DashFleet · история",
    "title.fleet": "DashFleet · парк", "title.machine": "DashFleet · машина",
    "nav.live": "Сейчас", "nav.history": "История", "nav.fleet": "Парк", "lang.label": "Язык",
    "status.ok": "Норма", "status.warn": "Внимание", "status.critical": "Критично", "status.expired": "Нет связи",
    "metric.cpu": "Процессор", "metric.ram": "Память", "metric.disk": "Диск", "metric.uptime": "Время работы",
    "live.heading": "Машина этого сервера", "live.health": "Состояние", "live.findings": "Замечания",
    "live.none": "Проблем не найдено.", "live.updated": "обновлено {time}",
    "history.heading": "История машины этого сервера", "history.last": "Последние 20 замеров",
    "history.empty": "Замеров пока нет.", "history.count": "замеров: {n}",
    "col.time": "Время", "col.cpu": "Процессор, %", "col.ram": "Память, %", "col.disk": "Диск, %",
    "col.score": "Оценка", "col.status": "Статус", "col.machine": "Машина", "col.reason": "Главная причина",
    "col.seen": "Последний отчёт",
    "fleet.heading": "Парк", "fleet.filter": "Фильтр", "fleet.filter.placeholder": "Имя, id, ОС или причина",
    "fleet.status.all": "Все", "fleet.empty": "Пока ни одна машина не прислала отчёт.",
    "fleet.count": "{shown} из {total} машин", "fleet.maintenance": "обслуживание до {time}",
    "fleet.maintenance.all": "Весь парк на обслуживании до {time}",
    "machine.back": "← Назад к парку", "machine.facts": "Сведения", "machine.findings": "Замечания",
    "machine.charts": "Графики", "machine.range": "Период", "machine.nodata": "Нет данных за этот период.",
    "machine.events": "События", "machine.noevents": "Событий нет.",
    "machine.nofacts": "Сведений нет.", "machine.seen": "последний отчёт {time}",
    "machine.id": "Идентификатор", "machine.os": "Операционная система", "machine.agent": "Версия агента",
    "machine.first": "Впервые замечена", "machine.dropped": "Отчёты, отброшенные агентом",
    "range.1h": "Последний час", "range.6h": "Последние 6 часов", "range.24h": "Последние 24 часа",
    "range.7d": "Последние 7 дней",
    "chart.avg": "{metric} (среднее)", "chart.max": "{metric} (макс.)",
    "finding.above": "{metric}: {value}, на уровне «{severity}» {threshold} или выше",
    "finding.below": "{metric}: {value}, на уровне «{severity}» {threshold} или ниже",
    "severity.warn": "внимание", "severity.critical": "критично",
    "event.status_changed": "Статус изменился", "event.silent": "Пропала связь", "event.back": "Связь восстановлена",
    "event.maintenance_started": "Начало обслуживания", "event.maintenance_ended": "Конец обслуживания",
    "event.seq_conflict": "Конфликт номеров", "event.machine_key_reset": "Ключ машины сброшен",
    "event.action": "Действие",
    "error.fetch": "Сервер недоступен ({error}); повторяем попытку.",
    "unit.d": "д", "unit.h": "ч", "unit.min": "мин", "unit.s": "с",
    "title.login": "DashFleet · вход",
    "login.heading": "Вход",
    "login.username": "Имя пользователя",
    "login.password": "Пароль",
    "login.submit": "Войти",
    "login.no_users": "Учётных записей ещё нет: откройте ссылку настройки из журнала сервера или выполните \"dashfleet user add\".",
    "login.code.heading": "Второй фактор",
    "login.code.help": "Введите 6 цифр из приложения-аутентификатора или один из резервных кодов.",
    "login.code": "Код",
    "login.code.submit": "Проверить",
    "login.enrol.heading": "Настройка второго фактора",
    "login.enrol.help": "Этот сервер требует второй фактор для вашей учётной записи. Отсканируйте код приложением-аутентификатором (или введите ключ), затем введите 6 цифр.",
    "login.enrol.key": "Ключ",
    "login.codes.heading": "Ваши резервные коды",
    "login.codes.help": "Каждый код позволяет войти один раз без приложения. Сохраните их в надёжном месте: они показываются только сейчас.",
    "login.codes.continue": "Я их сохранил: продолжить",
    "login.wrong": "Неверное имя пользователя или пароль.",
    "login.wrong_code": "Код неверен: введите 6 цифр, которые приложение показывает сейчас, или резервный код.",
    "login.locked": "Слишком много неудачных попыток входа: повторите через несколько минут.",
    "login.no_org": "Эта учётная запись не входит ни в одну организацию: попросите администратора добавить её.",
    "setup.heading": "Создание первого администратора",
    "setup.help": "Эта учётная запись управляет всем сервером. Пароль — не короче 12 символов.",
    "setup.password2": "Пароль ещё раз",
    "setup.submit": "Создать и войти",
    "setup.mismatch": "Пароли не совпадают: введите один и тот же дважды.",
    "setup.gone.heading": "Эту ссылку настройки нельзя использовать",
    "setup.gone": "Она уже использована, истекла, или администратор уже есть. Войдите или получите новую ссылку: \"dashfleet user setup-link\".",
    "account.org": "Организация",
    "account.logout": "Выйти",
    "operate.maint_start": "Обслуживание на 1 час",
    "operate.maint_end": "Завершить обслуживание",
  },
};

const LANGS = Object.keys(I18N);
const LANG_KEY = "dashfleet.lang";

let langInUse = null;  /* read once (t() runs thousands of times per fleet refresh); setLang sets it */

function currentLang() {
  if (langInUse) return langInUse;
  let saved = null;
  try { saved = localStorage.getItem(LANG_KEY); } catch (e) { saved = null; }
  const nav = (navigator.language || "en").slice(0, 2).toLowerCase();
  langInUse = saved && I18N[saved] ? saved : I18N[nav] ? nav : "en";
  return langInUse;
}

/* Translate `key`, replacing {name} with params.name. A missing key is a bug: it is reported on
   the console (the browser tests fail on console errors) and the key itself is shown. */
function t(key, params) {
  const table = I18N[currentLang()];
  let text = table[key];
  if (text === undefined) {
    console.error("i18n: missing key " + key + " for " + currentLang());
    text = key;
  }
  if (params) {
    text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  }
  return text;
}

function applyI18n(root) {
  const scope = root || document;
  scope.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  scope.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  scope.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  document.documentElement.lang = currentLang();
}

function setLang(lang) {
  if (!I18N[lang]) return;
  langInUse = lang;
  try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* private mode: this page only */ }
  applyI18n();
  document.dispatchEvent(new CustomEvent("dashfleet:lang", { detail: { lang } }));
}

document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("lang");
  if (select) {
    select.value = currentLang();
    select.addEventListener("change", () => setLang(select.value));
  }
  applyI18n();
});
