<?php
/**
 * FormRelay Bridge's settings: one option, overridden by wp-config.php constants.
 *
 * The option `formrelay_bridge_settings` (autoloaded) holds:
 *
 * - `sidecar_url` (string): where the sidecar listens, e.g. http://127.0.0.1:8787;
 * - `forms`: 'all' or a list of form ids whose submissions are queued;
 * - `form_settings`: form id => array( 'template' => 'x.j2' or '', 'priority' => 0..100,
 *   'partner' => a partner's name or '' for the sidecar's default partner );
 * - `remove_data_on_uninstall` (bool): whether uninstall.php drops the tables;
 * - `seal_public_key` (string): the X25519 public key (base64 of 32 bytes, as
 *   `formrelay keys generate` prints it) captured snapshots are sealed to, '' = none
 *   (FormRelay_Seal; autoloaded like the rest, so capture reads it with no query).
 *
 * The shared secret, which signs the notify and dashboard requests (never shown
 * again), has an option of its own, `formrelay_bridge_secret`, not autoloaded:
 * it is read only when a request to the sidecar is signed, not on every page.
 * Earlier builds kept it in the settings as `shared_secret`; it is moved on
 * admin_init (and read from there until then).
 *
 * The constants FORMRELAY_SIDECAR_URL, FORMRELAY_SHARED_SECRET and
 * FORMRELAY_SEAL_PUBLIC_KEY, when defined and not empty, win over the option.
 *
 * Updates are validated by FormRelay_Settings_Sanitizer (the option's
 * sanitize callback, registered here as FormRelay_Settings::sanitize()).
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads and registers the settings (their defaults, the option, the constants).
 */
final class FormRelay_Settings {

	const OPTION           = 'formrelay_bridge_settings';
	const SECRET_OPTION    = 'formrelay_bridge_secret';
	const GROUP            = 'formrelay_bridge';
	const TEMPLATE_PATTERN = '/^[A-Za-z0-9_.-]+\.j2\z/'; // \z: no trailing newline.
	const PARTNER_PATTERN  = '/^[a-z0-9][a-z0-9_-]{0,63}\z/'; // The sidecar's partner names.
	const PARTNERS_META    = 'partners'; // The formrelay_meta row the sidecar publishes them in.
	const DEFAULT_PRIORITY = 10;
	const MIN_PRIORITY     = 0;
	const MAX_PRIORITY     = 100;
	const MIN_SECRET_BYTES = 16;
	const URL_CONSTANT     = 'FORMRELAY_SIDECAR_URL';
	const SECRET_CONSTANT  = 'FORMRELAY_SHARED_SECRET';
	const SEAL_CONSTANT    = 'FORMRELAY_SEAL_PUBLIC_KEY';

	/**
	 * The settings when nothing is stored.
	 *
	 * @return array{sidecar_url: string, forms: string|int[], form_settings: array<int, array{template: string, priority: int, partner: string}>, remove_data_on_uninstall: bool, seal_public_key: string}
	 */
	public static function defaults() {
		return array(
			'sidecar_url'              => '',
			'forms'                    => 'all',
			'form_settings'            => array(),
			'remove_data_on_uninstall' => false,
			'seal_public_key'          => '',
		);
	}

	/**
	 * Register the option with the Settings API (hooked to `init`, so that its
	 * sanitize callback guards every update_option(), not only the form).
	 *
	 * @return void
	 */
	public static function register() {
		register_setting(
			self::GROUP,
			self::OPTION,
			array(
				'type'              => 'array',
				'description'       => 'FormRelay Bridge settings',
				'sanitize_callback' => array( __CLASS__, 'sanitize' ),
				'default'           => self::defaults(),
				'show_in_rest'      => false,
			)
		);
	}

	/**
	 * Activation: store the defaults unless settings exist, autoloaded, so that
	 * reading them costs no query (a missing option is one SELECT per request).
	 *
	 * @return void
	 */
	public static function activate() {
		add_option( self::OPTION, self::defaults(), '', 'yes' );
		self::maybe_move_secret();
	}

	/**
	 * The stored settings, every key present and well-typed.
	 *
	 * @return array{sidecar_url: string, forms: string|int[], form_settings: array<int, array{template: string, priority: int, partner: string}>, remove_data_on_uninstall: bool, seal_public_key: string}
	 */
	public static function get() {
		return self::normalize( get_option( self::OPTION, array() ) );
	}

	/**
	 * The sidecar's base URL: the constant when set, else the option ('' = none).
	 *
	 * @return string
	 */
	public static function sidecar_url() {
		$constant = self::constant_value( self::URL_CONSTANT );
		if ( null !== $constant ) {
			return untrailingslashit( $constant );
		}
		return self::get()['sidecar_url'];
	}

	/**
	 * The shared secret: the constant when set, else the option ('' = none).
	 *
	 * @return string
	 */
	public static function shared_secret() {
		$constant = self::constant_value( self::SECRET_CONSTANT );
		return null !== $constant ? $constant : self::stored_secret();
	}

	/**
	 * The secret stored as an option ('' = none): its own option, else where
	 * earlier builds kept it (until maybe_move_secret() has run).
	 *
	 * @return string
	 */
	public static function stored_secret() {
		$secret = get_option( self::SECRET_OPTION, '' );
		if ( is_string( $secret ) && '' !== $secret ) {
			return $secret;
		}
		$legacy = get_option( self::OPTION, array() );
		return is_array( $legacy ) && isset( $legacy['shared_secret'] ) && is_string( $legacy['shared_secret'] ) ? $legacy['shared_secret'] : '';
	}

	/**
	 * Store the secret in its own option, not autoloaded ('' removes it).
	 *
	 * @param string $secret The new secret, or ''.
	 * @return void
	 */
	public static function store_secret( $secret ) {
		if ( '' === $secret ) {
			delete_option( self::SECRET_OPTION );
			return;
		}
		if ( false === get_option( self::SECRET_OPTION, false ) ) {
			add_option( self::SECRET_OPTION, $secret, '', 'no' );
		} else {
			update_option( self::SECRET_OPTION, $secret, false );
		}
	}

	/**
	 * Upgrade (admin_init, activation): move a secret kept in the autoloaded
	 * settings (earlier builds) into its own option. Costs nothing once moved: the
	 * settings are autoloaded.
	 *
	 * @return void
	 */
	public static function maybe_move_secret() {
		$stored = get_option( self::OPTION );
		if ( ! is_array( $stored ) || ! array_key_exists( 'shared_secret', $stored ) ) {
			return;
		}
		if ( is_string( $stored['shared_secret'] ) && '' !== $stored['shared_secret'] && '' === (string) get_option( self::SECRET_OPTION, '' ) ) {
			self::store_secret( $stored['shared_secret'] );
		}
		unset( $stored['shared_secret'] );
		update_option( self::OPTION, $stored ); // The sanitizer's output never holds a secret.
	}

	/**
	 * The seal public key (base64, not checked here: FormRelay_Seal decodes it): the
	 * constant when set, else the option ('' = none, snapshots are stored in clear).
	 *
	 * @return string
	 */
	public static function seal_public_key() {
		$constant = self::constant_value( self::SEAL_CONSTANT );
		return null !== $constant ? $constant : self::get()['seal_public_key'];
	}

	/**
	 * Whether wp-config.php sets the seal public key.
	 *
	 * @return bool
	 */
	public static function seal_key_from_constant() {
		return null !== self::constant_value( self::SEAL_CONSTANT );
	}

	/**
	 * Whether wp-config.php sets the sidecar URL.
	 *
	 * @return bool
	 */
	public static function url_from_constant() {
		return null !== self::constant_value( self::URL_CONSTANT );
	}

	/**
	 * Whether wp-config.php sets the shared secret.
	 *
	 * @return bool
	 */
	public static function secret_from_constant() {
		return null !== self::constant_value( self::SECRET_CONSTANT );
	}

	/**
	 * Whether submissions of this form are queued.
	 *
	 * @param int $form_id Form (post) id.
	 * @return bool
	 */
	public static function form_selected( $form_id ) {
		$forms = self::get()['forms'];
		return 'all' === $forms || in_array( (int) $form_id, $forms, true );
	}

	/**
	 * The payload template the sidecar should use for this form, or null (its default).
	 *
	 * @param int $form_id Form (post) id.
	 * @return string|null
	 */
	public static function form_template( $form_id ) {
		$settings = self::get()['form_settings'];
		$template = isset( $settings[ (int) $form_id ] ) ? $settings[ (int) $form_id ]['template'] : '';
		return '' === $template ? null : $template;
	}

	/**
	 * The queue priority of this form's jobs (lower is sooner).
	 *
	 * @param int $form_id Form (post) id.
	 * @return int
	 */
	public static function form_priority( $form_id ) {
		$settings = self::get()['form_settings'];
		return isset( $settings[ (int) $form_id ] ) ? $settings[ (int) $form_id ]['priority'] : self::DEFAULT_PRIORITY;
	}

	/**
	 * The partner this form's jobs go to: a name, or '' for the sidecar's default partner.
	 *
	 * @param int $form_id Form (post) id.
	 * @return string
	 */
	public static function form_partner( $form_id ) {
		$settings = self::get()['form_settings'];
		return isset( $settings[ (int) $form_id ] ) ? $settings[ (int) $form_id ]['partner'] : '';
	}

	/**
	 * Whether a partner name has the sidecar's form (lower-case letters, digits, "_", "-").
	 *
	 * @param mixed $name Candidate.
	 * @return bool
	 */
	public static function valid_partner( $name ) {
		return is_string( $name ) && 1 === preg_match( self::PARTNER_PATTERN, $name );
	}

	/**
	 * The partners' names the sidecar published (formrelay_meta `partners`, JSON
	 * `[{"name": "intake", "profile": "default"}, ...]`, the first is the default),
	 * or null when the row is absent or unreadable. One query: the settings page
	 * reads it, capture never does.
	 *
	 * @return string[]|null
	 */
	public static function published_partners() {
		global $wpdb;
		$suppressed = $wpdb->suppress_errors( true ); // No tables yet: the schema notice says so.
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching -- the plugin's own tables, read fresh, never cached.
		$stored = $wpdb->get_var( $wpdb->prepare( "SELECT value FROM {$wpdb->prefix}formrelay_meta WHERE name = %s", self::PARTNERS_META ) );
		$wpdb->suppress_errors( $suppressed );
		$decoded = is_string( $stored ) ? json_decode( $stored, true ) : null;
		if ( ! is_array( $decoded ) || ! $decoded ) {
			return null;
		}
		$names = array();
		foreach ( $decoded as $one ) {
			if ( ! is_array( $one ) || ! isset( $one['name'] ) || ! self::valid_partner( $one['name'] ) ) {
				return null; // Not what the sidecar writes: offer nothing rather than a guess.
			}
			$names[] = $one['name'];
		}
		return array_values( array_unique( $names ) );
	}

	/**
	 * Whether a template name is acceptable (a file name ending in .j2, no path).
	 *
	 * @param mixed $name Candidate.
	 * @return bool
	 */
	public static function valid_template( $name ) {
		return is_string( $name ) && 1 === preg_match( self::TEMPLATE_PATTERN, $name );
	}

	/**
	 * A priority as an int in range, or null when it is not one.
	 *
	 * @param mixed $value Candidate (an int, or digits as the form posts them).
	 * @return int|null
	 */
	public static function parse_priority( $value ) {
		if ( is_int( $value ) ) {
			$number = $value;
		} elseif ( is_string( $value ) && 1 === preg_match( '/^\s*\d{1,3}\s*$/', $value ) ) {
			$number = (int) trim( $value );
		} else {
			return null;
		}
		return ( $number >= self::MIN_PRIORITY && $number <= self::MAX_PRIORITY ) ? $number : null;
	}

	/**
	 * The Settings API sanitize callback: the new stored value.
	 *
	 * @see FormRelay_Settings_Sanitizer::sanitize()
	 *
	 * @param mixed $input The posted (unslashed) or updated value.
	 * @return array The settings to store.
	 */
	public static function sanitize( $input ) {
		return FormRelay_Settings_Sanitizer::sanitize( $input );
	}

	/**
	 * A value read from the database, with every key present and well-typed.
	 *
	 * @param mixed $value The stored option.
	 * @return array{sidecar_url: string, forms: string|int[], form_settings: array<int, array{template: string, priority: int, partner: string}>, remove_data_on_uninstall: bool, seal_public_key: string}
	 */
	private static function normalize( $value ) {
		$settings = self::defaults();
		if ( ! is_array( $value ) ) {
			return $settings;
		}
		if ( isset( $value['sidecar_url'] ) && is_string( $value['sidecar_url'] ) ) {
			$settings['sidecar_url'] = $value['sidecar_url'];
		}
		// Anything but a list means all forms: a damaged option must not stop capture.
		if ( isset( $value['forms'] ) && is_array( $value['forms'] ) ) {
			$settings['forms'] = FormRelay_Settings_Sanitizer::clean_ids( $value['forms'] );
		}
		if ( isset( $value['form_settings'] ) && is_array( $value['form_settings'] ) ) {
			foreach ( $value['form_settings'] as $form_id => $one ) {
				$form_id = absint( $form_id );
				if ( $form_id < 1 || ! is_array( $one ) ) {
					continue;
				}
				$template = isset( $one['template'] ) && self::valid_template( $one['template'] ) ? $one['template'] : '';
				$priority = isset( $one['priority'] ) ? self::parse_priority( $one['priority'] ) : null;
				$partner  = isset( $one['partner'] ) && self::valid_partner( $one['partner'] ) ? $one['partner'] : '';

				$settings['form_settings'][ $form_id ] = array(
					'template' => $template,
					'priority' => null === $priority ? self::DEFAULT_PRIORITY : $priority,
					'partner'  => $partner,
				);
			}
		}
		$settings['remove_data_on_uninstall'] = ! empty( $value['remove_data_on_uninstall'] );
		if ( isset( $value['seal_public_key'] ) && is_string( $value['seal_public_key'] ) ) {
			$settings['seal_public_key'] = $value['seal_public_key'];
		}
		return $settings;
	}

	/**
	 * A wp-config.php constant's value when it is a non-empty string, else null.
	 *
	 * @param string $name Constant name.
	 * @return string|null
	 */
	private static function constant_value( $name ) {
		if ( ! defined( $name ) ) {
			return null;
		}
		$value = constant( $name );
		return is_string( $value ) && '' !== $value ? $value : null;
	}
}
